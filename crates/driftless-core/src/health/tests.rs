use serde_json::json;

use super::*;

const CASES: &str = "tests/fixtures/health/cases.yaml";

fn cases() -> Vec<DesiredObject> {
    let path = format!("{}/{CASES}", env!("CARGO_MANIFEST_DIR"));
    parse_objects(&std::fs::read_to_string(path).unwrap(), CASES).unwrap()
}

#[test]
fn fixture_cases_match_their_expectations() {
    let cases = cases();
    assert!(cases.len() >= 40);
    for case in cases {
        let expect_status = str_at(&case.object, &["metadata", "annotations", "expect/status"]).unwrap();
        let expect_message = str_at(&case.object, &["metadata", "annotations", "expect/message"]).unwrap();
        let report = assess(&case.object);
        assert_eq!(report.status.to_string(), expect_status, "{}: {report}", case.origin);
        assert!(
            report.message.contains(expect_message),
            "{}: {report:?} lacks {expect_message:?}",
            case.origin
        );
    }
}

#[test]
fn severity_order_and_worst() {
    use HealthStatus::*;
    assert!(Healthy < Suspended && Suspended < Progressing && Progressing < Missing);
    assert!(Missing < Degraded && Degraded < Unknown);
    let reports: Vec<HealthReport> = cases().iter().map(|c| assess(&c.object)).collect();
    assert_eq!(worst(&reports).status, Degraded);
    let healthy = [HealthReport::new(Healthy, "a"), HealthReport::new(Suspended, "b")];
    assert_eq!(worst(&healthy).message, "b");
    assert_eq!(worst(&[]).status, Healthy);
    let with_missing = [HealthReport::new(Progressing, "p"), assess_live(None)];
    assert_eq!(worst(&with_missing), HealthReport::missing());
}

#[test]
fn garbage_is_unknown_never_a_panic() {
    for v in [
        json!(null),
        json!("Deployment"),
        json!([1, 2]),
        json!({"kind": "Deployment"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": "broken"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}, "status": {"conditions": "x"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "status": {"containerStatuses": [1, null, {"state": 3}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": 7}}),
        json!({"apiVersion": "example.com/v1", "kind": "X", "status": {"conditions": [null, 1, {"type": 5}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": i64::MIN, "updateStrategy": {"rollingUpdate": {"partition": i64::MAX}}}, "status": {}}),
    ] {
        let _ = assess(&v);
    }
    assert_eq!(assess(&json!({"kind": "Deployment"})).status, HealthStatus::Unknown);
}

#[test]
fn parse_objects_expands_lists_and_keeps_lines() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    let objs = parse_objects(text, "dump.yaml").unwrap();
    let names: Vec<String> = objs.iter().map(|o| o.object_ref().unwrap().to_string()).collect();
    assert_eq!(names, ["ConfigMap/a", "ConfigMap/b", "Service/s"]);
    assert_eq!(objs[2].origin.to_string(), "dump.yaml:11");
    let err = parse_objects("a: 1\n", "x.yaml").unwrap_err().to_string();
    assert!(err.starts_with("x.yaml:1: not a Kubernetes object"), "{err}");
    assert!(parse_objects("a: [\n", "x.yaml").is_err());
}

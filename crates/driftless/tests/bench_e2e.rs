//! End-to-end: every `driftless bench` scenario at a tiny size, through the built binary
//! (which starts the `kubesim` binary next to it and `driftless serve` as children), checking
//! that the JSON contract holds and the figures are sane. Timings are not asserted (see
//! BENCHMARKS.md for measurements); only shapes and invariants such as "a no-op resync makes
//! no writes" are.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// The kubesim binary next to `driftless`, built if it is not there yet (cargo builds only
/// the binaries of the package under test).
fn kubesim() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let driftless = PathBuf::from(env!("CARGO_BIN_EXE_driftless"));
    let dir = driftless.parent().expect("binary directory");
    let path = dir.join("kubesim");
    if !path.exists() {
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "-p", "kubesim", "--bin", "kubesim"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building kubesim failed");
    }
    path
}

fn bench(args: &[&str]) -> Value {
    let kubesim = kubesim();
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("bench")
        .args(args)
        .arg("--kubesim")
        .arg(&kubesim)
        .args(["-o", "json"])
        .env_remove("DRIFTLESS_APPS")
        .env_remove("DRIFTLESS_SERVER")
        .output()
        .expect("driftless runs");
    assert!(
        out.status.success(),
        "driftless bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn seconds(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number: {v}"));
    assert!(x.is_finite() && x >= 0.0, "{key} = {x}: {v}");
    x
}

/// Fields every scenario reports.
fn common(v: &Value, scenario: &str, apps: u64, objects: u64) {
    assert_eq!(v["scenario"], scenario, "{v}");
    assert_eq!(v["apps"], apps, "{v}");
    assert_eq!(v["objects"], objects, "{v}");
    assert!(v["cores"].as_u64().is_some_and(|c| c >= 1), "{v}");
    assert!(v["peak_rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "{v}");
    assert!(v["writes"].as_u64().is_some(), "{v}");
    seconds(v, "driftless_seconds");
    seconds(v, "driftless_cpu_seconds");
    seconds(v, "kubesim_cpu_seconds");
    seconds(v, "cold_sync_seconds");
    assert!(v.get("kubectl_seconds").is_some() && v.get("ratio").is_some(), "{v}");
}

/// The peer ran and the ratio is its time over driftless's.
fn with_peer(v: &Value) {
    let d = seconds(v, "driftless_seconds");
    let k = seconds(v, "kubectl_seconds");
    seconds(v, "kubectl_prune_seconds");
    let ratio = seconds(v, "ratio");
    assert!(d > 0.0 && k > 0.0, "{v}");
    assert!(
        (ratio - k / d).abs() <= 0.01 * ratio.max(1.0),
        "ratio {ratio} vs {k}/{d}: {v}"
    );
}

#[test]
fn cold_apps_syncs_every_object_once_and_times_the_peer() {
    let v = bench(&["--scenario", "cold-apps", "--apps", "3", "--objects", "2"]);
    common(&v, "cold-apps", 3, 2);
    with_peer(&v);
    // 3 namespaces + 6 objects, each written once; kubectl writes the same 9.
    assert_eq!(v["writes"], 9, "{v}");
    assert_eq!(v["kubectl_writes"], 9, "{v}");
}

#[test]
fn big_app_is_one_app() {
    let v = bench(&["--scenario", "big-app", "--objects", "12"]);
    common(&v, "big-app", 1, 12);
    with_peer(&v);
    assert_eq!(v["writes"], 13, "{v}");
}

#[test]
fn noop_resync_makes_no_writes() {
    let v = bench(&["--scenario", "noop-resync", "--apps", "3", "--objects", "2"]);
    common(&v, "noop-resync", 3, 2);
    with_peer(&v);
    assert_eq!(v["writes"], 0, "a resync at an unchanged revision must not write: {v}");
    assert_eq!(v["cold_sync_writes"], 9, "{v}");
}

#[test]
fn idle_cpu_renders_nothing() {
    let v = bench(&[
        "--scenario",
        "idle-cpu",
        "--apps",
        "3",
        "--objects",
        "2",
        "--window",
        "2",
    ]);
    common(&v, "idle-cpu", 3, 2);
    assert_eq!(v["renders"], 0, "{v}");
    assert_eq!(v["writes"], 0, "{v}");
    seconds(&v, "idle_cpu_percent");
    assert!(v["kubectl_seconds"].is_null(), "{v}");
}

#[test]
fn drift_repair_reports_percentiles_and_one_revert_per_drift() {
    let v = bench(&[
        "--scenario",
        "drift-repair",
        "--apps",
        "3",
        "--objects",
        "2",
        "--iterations",
        "2",
    ]);
    common(&v, "drift-repair", 3, 2);
    assert_eq!(v["iterations"], 2, "{v}");
    let (p50, p95) = (seconds(&v, "p50_seconds"), seconds(&v, "p95_seconds"));
    assert!(p50 > 0.0 && p50 <= p95, "{v}");
    // Each iteration: the benchmark's drift plus driftless's revert.
    assert_eq!(v["writes"], 4, "{v}");
}

#[test]
fn webhook_latency_reports_percentiles() {
    let v = bench(&[
        "--scenario",
        "webhook-latency",
        "--apps",
        "3",
        "--objects",
        "2",
        "--iterations",
        "2",
    ]);
    common(&v, "webhook-latency", 3, 2);
    assert_eq!(v["iterations"], 2, "{v}");
    let (p50, p95) = (seconds(&v, "p50_seconds"), seconds(&v, "p95_seconds"));
    assert!(p50 > 0.0 && p50 <= p95, "{v}");
    // One ConfigMap changed per push.
    assert_eq!(v["writes"], 2, "{v}");
}

#[test]
fn unknown_scenarios_and_bad_counts_are_errors_not_panics() {
    let kubesim = kubesim();
    for args in [
        vec!["--scenario", "nope"],
        vec!["--scenario", "cold-apps", "--apps", "many"],
        vec!["--scenario", "cold-apps", "--objects", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
            .arg("bench")
            .args(&args)
            .arg("--kubesim")
            .arg(&kubesim)
            .output()
            .expect("driftless runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

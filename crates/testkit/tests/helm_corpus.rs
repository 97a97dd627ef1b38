//! Keeps the native renderer's conformance corpus (`crates/driftless-helm/tests/`) honest against
//! the real helm: every chart renders with no extra values and with each `ci/*.yaml`, its output
//! parses with [`testkit::parse_rendered`] and compares equal to itself; every chart under
//! `errors/` (and the schema chart's `ci-invalid/bad.yaml`) fails with exactly the stderr
//! recorded in its `expected-error.txt`. Skipped (with a line) when helm is absent, except under CI.

use std::path::{Path, PathBuf};

use testkit::{HelmArgs, compare_objects, helm_binary, helm_template};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../driftless-helm/tests")
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn args(chart: &Path, values: Option<PathBuf>) -> HelmArgs {
    HelmArgs {
        release: "rel".into(),
        chart_dir: chart.to_owned(),
        namespace: "conformance".into(),
        values_files: values.into_iter().collect(),
        ..HelmArgs::default()
    }
}

fn read_expected(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_corpus_chart_renders_with_each_ci_values_file() {
    let Some(helm) = helm_binary() else { return };
    let charts = subdirectories(&corpus().join("charts"));
    assert!(charts.len() >= 12, "the corpus has {} charts", charts.len());
    for chart in charts {
        let mut runs = vec![None];
        if chart.join("ci").is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
                .expect("ci dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{}: ci/ has no values files", chart.display());
            runs.extend(files.into_iter().map(Some));
        }
        for values in runs {
            let what = format!("{} with {values:?}", chart.display());
            let docs = helm_template(&helm, &args(&chart, values)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!docs.is_empty(), "{what}: no documents");
            compare_objects(&docs, &docs).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}

#[test]
fn every_error_chart_fails_with_the_recorded_message() {
    let Some(helm) = helm_binary() else { return };
    let errors = subdirectories(&corpus().join("errors"));
    assert!(errors.len() >= 8, "the error corpus has {} charts", errors.len());
    for chart in errors {
        let mut a = args(&chart, None);
        a.namespace = String::new();
        let err = helm_template(&helm, &a).expect_err(&chart.display().to_string());
        assert_eq!(
            err,
            read_expected(&chart.join("expected-error.txt")),
            "{}",
            chart.display()
        );
    }
    let schema = corpus().join("charts/schema");
    let mut a = args(&schema, Some(schema.join("ci-invalid/bad.yaml")));
    a.namespace = String::new();
    let err = helm_template(&helm, &a).expect_err("the schema chart with ci-invalid/bad.yaml");
    assert_eq!(err, read_expected(&schema.join("ci-invalid/expected-error.txt")));
}

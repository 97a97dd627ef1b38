//! Integration tests: fixture trees in temporary directories, real `kubectl kustomize`.

use std::fs;
use std::path::Path;

use driftless_render::{CacheKey, NextStep, RenderCache, RenderError, RenderOptions, Rendered, digest, render};
use tempfile::TempDir;

/// A temporary directory with `repo/` (the repository root) and `outside/` next to it.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("repo")).unwrap();
        fs::create_dir_all(dir.path().join("outside")).unwrap();
        fs::write(
            dir.path().join("outside/secret.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\ndata: {k: c2VjcmV0}\n",
        )
        .unwrap();
        let f = Fixture { dir };
        for (path, text) in files {
            f.write(path, text);
        }
        f
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("repo")
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.root().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn symlink(&self, target: &Path, link: &str) {
        let p = self.root().join(link);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    fn render(&self, path: &str) -> Result<Rendered, RenderError> {
        render(&self.root(), path, &RenderOptions::default())
    }
}

fn names(r: &Rendered) -> Vec<String> {
    r.set
        .objects
        .iter()
        .map(|o| o.object_ref().unwrap().to_string())
        .collect()
}

fn origins(r: &Rendered) -> Vec<String> {
    r.set.objects.iter().map(|o| o.origin.to_string()).collect()
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------- plain directories

#[test]
fn plain_directory_multi_doc_json_lists_in_path_order() {
    let f = Fixture::new(&[
        (
            "app/b.yaml",
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b1}\n---\n\n---\n# two\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b2}\n",
        ),
        (
            "app/a.json",
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"svc\"}}\n",
        ),
        (
            "app/sub/list.yml",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: sa1}\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: sa2}\n",
        ),
        ("app/README.md", "# not a manifest\n"),
        ("app/.github/workflows/ci.yaml", "on: push\n"),
        ("other/c.yaml", &cm("not-this-app")),
    ]);
    let r = f.render("app").unwrap();
    assert_eq!(
        names(&r),
        [
            "Service/svc",
            "ConfigMap/b1",
            "ConfigMap/b2",
            "ServiceAccount/sa1",
            "ServiceAccount/sa2"
        ]
    );
    assert_eq!(
        origins(&r),
        [
            "app/a.json:1",
            "app/b.yaml:2",
            "app/b.yaml:9",
            "app/sub/list.yml:1",
            "app/sub/list.yml:1"
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // The whole repository, rendered from the root.
    let all = f.render(".").unwrap();
    assert_eq!(all.set.objects.len(), 6);
}

#[test]
fn single_file_path_renders_that_file() {
    let f = Fixture::new(&[("app/one.yaml", &cm("one")), ("app/two.yaml", &cm("two"))]);
    let r = f.render("app/one.yaml").unwrap();
    assert_eq!(names(&r), ["ConfigMap/one"]);
}

#[test]
fn non_kubernetes_documents_are_skipped_with_a_warning() {
    let f = Fixture::new(&[
        ("app/values.yaml", "replicaCount: 3\nimage:\n  tag: v1\n"),
        ("app/cm.yaml", &format!("{}---\nfoo: bar\n", cm("a"))),
    ]);
    let r = f.render("app").unwrap();
    assert_eq!(names(&r), ["ConfigMap/a"]);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].starts_with("app/cm.yaml:8:"), "{:?}", r.warnings);
    assert!(r.warnings[1].starts_with("app/values.yaml:1:"), "{:?}", r.warnings);
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let f = Fixture::new(&[
        ("app/good.yaml", &cm("a")),
        (
            "app/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"unterminated\n",
        ),
    ]);
    let e = f.render("app").unwrap_err();
    let RenderError::Syntax { file, line, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(file, "app/bad.yaml");
    assert!(*line >= 6, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("app/bad.yaml:{line}:")), "{msg}");
    assert_eq!(e.next_step(), NextStep::WaitForChange);
}

#[test]
fn json_syntax_error_names_file_and_line() {
    let f = Fixture::new(&[("app/x.json", "{\n  \"apiVersion\": \"v1\",\n  \"kind\": }\n")]);
    let e = f.render("app").unwrap_err();
    assert!(e.to_string().starts_with("app/x.json:3:"), "{e}");
}

#[test]
fn duplicate_keys_are_an_error() {
    let f = Fixture::new(&[(
        "app/dup.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
    )]);
    let e = f.render("app").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("app/dup.yaml:5:"), "{msg}");
    assert!(msg.to_lowercase().contains("duplicate"), "{msg}");
}

#[test]
fn missing_name_is_an_error_with_file_and_line() {
    let f = Fixture::new(&[(
        "app/x.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  generateName: s-\n",
            cm("a")
        ),
    )]);
    let e = f.render("app").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("app/x.yaml:8: Secret:"), "{msg}");
    assert!(msg.contains("metadata.name"), "{msg}");
}

#[test]
fn the_same_object_twice_is_an_error() {
    let f = Fixture::new(&[("app/a.yaml", &cm("same")), ("app/b/c.yaml", &cm("same"))]);
    let e = f.render("app").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("ConfigMap/same") && msg.contains("app/a.yaml:1") && msg.contains("app/b/c.yaml:1"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- confinement and limits

#[test]
fn symlinked_file_leaving_the_repository_is_refused() {
    let f = Fixture::new(&[("app/ok.yaml", &cm("a"))]);
    f.symlink(&f.dir.path().join("outside/secret.yaml"), "app/steal.yaml");
    let e = f.render("app").unwrap_err();
    assert!(
        matches!(&e, RenderError::OutsideRepository { file, .. } if file == "app/steal.yaml"),
        "{e:?}"
    );
    // The message does not reveal the target's contents.
    assert!(!e.to_string().contains("c2VjcmV0"));
    // Even with a name that is not a manifest.
    let f = Fixture::new(&[("app/ok.yaml", &cm("a"))]);
    f.symlink(Path::new("/etc/passwd"), "app/passwd");
    assert!(matches!(f.render("app"), Err(RenderError::OutsideRepository { .. })));
}

#[test]
fn symlinked_directory_leaving_the_repository_is_refused() {
    let f = Fixture::new(&[("app/ok.yaml", &cm("a"))]);
    f.symlink(&f.dir.path().join("outside"), "app/linked");
    let e = f.render("app").unwrap_err();
    assert!(
        matches!(&e, RenderError::OutsideRepository { file, .. } if file == "app/linked"),
        "{e:?}"
    );
    // The application path itself through a symlink.
    f.symlink(&f.dir.path().join("outside"), "escape");
    assert!(matches!(f.render("escape"), Err(RenderError::OutsideRepository { .. })));
}

#[test]
fn symlinks_inside_the_repository_are_followed_and_loops_refused() {
    let f = Fixture::new(&[("shared/cm.yaml", &cm("shared"))]);
    f.symlink(&f.root().join("shared/cm.yaml"), "app/cm.yaml");
    f.symlink(Path::new("../shared"), "app/dir");
    let r = f.render("app").unwrap_err();
    // Both links reach the same object: reported as a duplicate, with logical paths.
    assert!(
        r.to_string().contains("app/cm.yaml:1") && r.to_string().contains("app/dir/cm.yaml:1"),
        "{r}"
    );

    let f = Fixture::new(&[("app/cm.yaml", &cm("a"))]);
    f.symlink(Path::new(".."), "app/loop");
    let e = f.render("app").unwrap_err();
    assert!(e.to_string().contains("loop"), "{e}");
}

#[test]
fn dot_dot_and_absolute_application_paths_are_refused() {
    let f = Fixture::new(&[("app/cm.yaml", &cm("a"))]);
    for bad in ["../outside", "app/../../outside", "/etc", "app/../app"] {
        let e = f.render(bad).unwrap_err();
        assert!(matches!(e, RenderError::InvalidPath { .. }), "{bad}: {e:?}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    assert!(matches!(f.render("nope"), Err(RenderError::NotFound { .. })));
}

#[test]
fn oversize_file_is_refused_with_its_name() {
    let f = Fixture::new(&[("app/cm.yaml", &cm("a"))]);
    let big = format!("{}  big: \"{}\"\n", cm("big"), "x".repeat(9 * 1024 * 1024));
    f.write("app/big.yaml", &big);
    let e = f.render("app").unwrap_err();
    assert!(
        matches!(&e, RenderError::FileTooLarge { file, limit, .. } if file == "app/big.yaml" && *limit == 8 << 20),
        "{e:?}"
    );
}

#[test]
fn total_size_limit_is_enforced() {
    let f = Fixture::new(&[
        ("app/a.yaml", &cm("a")),
        ("app/b.yaml", &cm("b")),
        ("app/c.yaml", &cm("c")),
    ]);
    let options = RenderOptions {
        max_total_bytes: 150,
        ..RenderOptions::default()
    };
    let e = render(&f.root(), "app", &options).unwrap_err();
    assert!(
        matches!(&e, RenderError::TotalTooLarge { file, .. } if file == "app/c.yaml"),
        "{e:?}"
    );
}

#[test]
fn alias_bomb_is_refused() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..=9 {
        let prev = i - 1;
        let refs = vec![format!("*x{prev}"); 10].join(", ");
        bomb.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    let f = Fixture::new(&[("app/bomb.yaml", &bomb)]);
    let e = f.render("app").unwrap_err();
    assert!(
        matches!(&e, RenderError::Syntax { file, .. } if file == "app/bomb.yaml"),
        "{e:?}"
    );
}

#[test]
fn non_utf8_manifest_is_refused() {
    let f = Fixture::new(&[]);
    fs::create_dir_all(f.root().join("app")).unwrap();
    fs::write(f.root().join("app/x.yaml"), b"apiVersion: v1\xff\n").unwrap();
    assert!(matches!(f.render("app"), Err(RenderError::NotUtf8 { .. })));
}

// ---------------------------------------------------------------- kustomize

fn base_overlay() -> Fixture {
    Fixture::new(&[
        ("base/kustomization.yaml", "resources:\n- deployment.yaml\n- cm.yaml\n"),
        (
            "base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
        ),
        ("base/cm.yaml", &cm("settings")),
        (
            "overlays/prod/kustomization.yaml",
            "resources:\n- ../../base\nnamePrefix: prod-\nnamespace: prod\npatches:\n- path: replicas.yaml\n",
        ),
        (
            "overlays/prod/replicas.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
        ),
    ])
}

#[test]
fn kustomize_builds_base_and_overlay() {
    if !kubectl_available() {
        eprintln!("kubectl not on PATH; skipping");
        return;
    }
    let f = base_overlay();
    let r = f.render("overlays/prod").unwrap();
    let mut n = names(&r);
    n.sort();
    assert_eq!(n, ["ConfigMap/prod/prod-settings", "Deployment/prod/prod-web"]);
    let deploy = r.set.objects.iter().find(|o| o.object["kind"] == "Deployment").unwrap();
    assert_eq!(deploy.object["spec"]["replicas"], 3);
    assert_eq!(origins(&r), ["kustomize:overlays/prod:1", "kustomize:overlays/prod:2"]);
    // Rendering from the repository root finds both kustomizations; the base and the
    // overlay declare different objects (prefix, namespace), so there is no conflict.
    let all = f.render(".").unwrap();
    assert_eq!(all.set.objects.len(), 4);
}

#[test]
fn kustomize_shared_patch_elsewhere_in_the_repository_is_allowed() {
    if !kubectl_available() {
        return;
    }
    let f = base_overlay();
    f.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\npatches:\n- path: ../../common/replicas.yaml\n",
    );
    f.write(
        "common/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    );
    let r = f.render("overlays/prod").unwrap();
    let deploy = r.set.objects.iter().find(|o| o.object["kind"] == "Deployment").unwrap();
    assert_eq!(deploy.object["spec"]["replicas"], 5);
}

#[test]
fn kustomize_remote_bases_are_refused() {
    for remote in [
        "github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v3.3.1",
        "https://github.com/org/repo//deploy?ref=main",
        "https://user:token@example.com/org/repo.git",
        "git@github.com:org/repo.git",
    ] {
        let f = Fixture::new(&[
            (
                "app/kustomization.yaml",
                &format!("resources:\n- cm.yaml\n- {remote}\n"),
            ),
            ("app/cm.yaml", &cm("a")),
        ]);
        let e = f.render("app").unwrap_err();
        assert!(
            matches!(&e, RenderError::RemoteRefused { file, field, .. } if file == "app/kustomization.yaml" && field == "resources"),
            "{remote}: {e:?}"
        );
        assert!(!e.to_string().contains("token"), "{e}");
    }
}

#[test]
fn kustomize_missing_local_resource_is_refused_before_running() {
    let f = Fixture::new(&[("app/kustomization.yaml", "resources:\n- nothere.yaml\n")]);
    let e = f.render("app").unwrap_err();
    assert!(matches!(e, RenderError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("nothere.yaml"), "{e}");
}

#[test]
fn kustomize_references_outside_the_repository_are_refused() {
    let cases = [
        "resources:\n- ../../outside/secret.yaml\n",
        "resources:\n- ../../outside\n",
        "resources:\n- /etc/passwd\n",
        "patches:\n- path: ../../outside/secret.yaml\n",
        "patchesStrategicMerge:\n- ../../outside/secret.yaml\n",
        "configMapGenerator:\n- name: x\n  files:\n  - key=../../outside/secret.yaml\n",
        "secretGenerator:\n- name: x\n  envs:\n  - ../../outside/secret.yaml\n",
        "crds:\n- ../../outside/secret.yaml\n",
        "openapi:\n  path: ../../outside/secret.yaml\n",
        "components:\n- ../../outside\n",
    ];
    for k in cases {
        let f = Fixture::new(&[("app/kustomization.yaml", k)]);
        let e = f.render("app").unwrap_err();
        assert!(
            matches!(&e, RenderError::OutsideRepository { file, .. } if file == "app/kustomization.yaml"),
            "{k}: {e:?}"
        );
    }
    // Through a symlink inside the repository.
    let f = Fixture::new(&[("app/kustomization.yaml", "resources:\n- linked.yaml\n")]);
    f.symlink(&f.dir.path().join("outside/secret.yaml"), "app/linked.yaml");
    assert!(matches!(f.render("app"), Err(RenderError::OutsideRepository { .. })));
    // A base deeper in the graph that escapes.
    let f = Fixture::new(&[
        ("app/kustomization.yaml", "resources:\n- ../base\n"),
        ("base/kustomization.yaml", "resources:\n- ../../outside/secret.yaml\n"),
    ]);
    let e = f.render("app").unwrap_err();
    assert!(
        matches!(&e, RenderError::OutsideRepository { file, .. } if file == "base/kustomization.yaml"),
        "{e:?}"
    );
}

#[test]
fn kustomize_cycle_is_refused() {
    let f = Fixture::new(&[
        ("a/kustomization.yaml", "resources:\n- ../b\n"),
        ("b/kustomization.yaml", "resources:\n- ../a\n"),
    ]);
    let e = f.render("a").unwrap_err();
    assert!(matches!(e, RenderError::KustomizeCycle { .. }), "{e:?}");
    assert!(e.to_string().contains("a -> b -> a"), "{e}");
    // Self-reference.
    let f = Fixture::new(&[("a/kustomization.yaml", "resources:\n- .\n")]);
    assert!(matches!(f.render("a"), Err(RenderError::KustomizeCycle { .. })));
}

#[test]
fn kustomize_depth_is_limited() {
    let mut files = Vec::new();
    for i in 0..25 {
        files.push((
            format!("k{i}/kustomization.yaml"),
            format!("resources:\n- ../k{}\n", i + 1),
        ));
    }
    files.push(("k25/kustomization.yaml".into(), "resources: []\n".into()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let f = Fixture::new(&refs);
    let e = f.render("k0").unwrap_err();
    assert!(matches!(e, RenderError::KustomizeTooDeep { limit: 20, .. }), "{e:?}");
    // Within the limit the check passes (k10 has a chain of 16 kustomizations).
    let f = Fixture::new(&refs);
    let check = f.render("k10");
    assert!(!matches!(check, Err(RenderError::KustomizeTooDeep { .. })), "{check:?}");
}

#[test]
fn kustomize_helm_and_plugins_are_refused() {
    let f = Fixture::new(&[(
        "app/kustomization.yaml",
        "helmCharts:\n- name: minecraft\n  repo: https://charts.example.com\n",
    )]);
    let e = f.render("app").unwrap_err();
    assert!(matches!(e, RenderError::PluginRefused { .. }), "{e:?}");
    assert!(e.to_string().contains("Helm"), "{e}");

    let f = Fixture::new(&[
        ("app/kustomization.yaml", "transformers:\n- exec.yaml\n"),
        (
            "app/exec.yaml",
            "apiVersion: example.com/v1\nkind: Run\nmetadata:\n  name: x\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
        ),
    ]);
    let e = f.render("app").unwrap_err();
    assert!(e.to_string().contains("KRM function"), "{e}");

    // A generator directory whose resources are plugin configs is checked too.
    let f = Fixture::new(&[
        ("app/kustomization.yaml", "generators:\n- gen\n"),
        ("app/gen/kustomization.yaml", "resources:\n- plugin.yaml\n"),
        (
            "app/gen/plugin.yaml",
            "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata: {name: x}\n",
        ),
    ]);
    let e = f.render("app").unwrap_err();
    assert!(e.to_string().contains("non-builtin"), "{e}");
}

#[test]
fn kustomize_builtin_transformer_is_allowed() {
    if !kubectl_available() {
        return;
    }
    let f = Fixture::new(&[
        (
            "app/kustomization.yaml",
            "resources:\n- cm.yaml\ntransformers:\n- prefix.yaml\n",
        ),
        ("app/cm.yaml", &cm("a")),
        (
            "app/prefix.yaml",
            "apiVersion: builtin\nkind: PrefixSuffixTransformer\nmetadata:\n  name: p\nprefix: t-\nfieldSpecs:\n- path: metadata/name\n",
        ),
    ]);
    let r = f.render("app").unwrap();
    assert_eq!(names(&r), ["ConfigMap/t-a"]);
}

#[test]
fn kustomize_disabled_is_an_error_not_a_plain_read() {
    let f = base_overlay();
    let options = RenderOptions {
        kustomize: false,
        ..RenderOptions::default()
    };
    let e = render(&f.root(), "overlays/prod", &options).unwrap_err();
    assert!(matches!(e, RenderError::KustomizeDisabled { .. }), "{e:?}");
}

#[test]
fn kustomize_failure_reports_stderr_without_absolute_paths() {
    if !kubectl_available() {
        return;
    }
    let f = Fixture::new(&[
        ("app/kustomization.yaml", "resources:\n- cm.yaml\nbogusField: 1\n"),
        ("app/cm.yaml", &cm("a")),
    ]);
    let e = f.render("app").unwrap_err();
    assert!(matches!(e, RenderError::KustomizeFailed { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("bogusField"), "{msg}");
    assert!(!msg.contains(&*f.root().to_string_lossy()), "{msg}");
}

// ---------------------------------------------------------------- cache and determinism

#[test]
fn cache_hit_does_not_render_again() {
    let f = Fixture::new(&[("app/cm.yaml", &cm("a"))]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = RenderCache::new(cache_dir.path()).unwrap();
    let options = RenderOptions::default();
    let key = CacheKey::new("0123abcd", "app", &options);
    let calls = std::cell::Cell::new(0);
    let run = || {
        calls.set(calls.get() + 1);
        render(&f.root(), "app", &options)
    };
    let first = cache.get_or_render(&key, run).unwrap();
    let second = cache.get_or_render(&key, run).unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(first, second);
    // Another commit is another entry.
    let other = CacheKey::new("4567ef", "app", &options);
    cache.get_or_render(&other, run).unwrap();
    assert_eq!(calls.get(), 2);
    // Entry names are hashes, nothing from the key.
    for entry in fs::read_dir(cache_dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("app") && name.ends_with(".json"), "{name}");
    }
}

#[test]
fn renders_are_deterministic() {
    let f = base_overlay();
    f.write("plain/a.yaml", &cm("p1"));
    f.write("plain/z/b.yaml", &cm("p2"));
    let a = f.render("plain").unwrap();
    let b = f.render("plain").unwrap();
    assert_eq!(a, b);
    assert_eq!(digest(&a.set), digest(&b.set));
    if kubectl_available() {
        let a = f.render("overlays/prod").unwrap();
        let b = f.render("overlays/prod").unwrap();
        assert_eq!(digest(&a.set), digest(&b.set));
        assert_eq!(a, b);
    }
}

#[test]
fn kustomize_timeout_kills_the_process() {
    if !kubectl_available() {
        return;
    }
    let f = base_overlay();
    let options = RenderOptions {
        timeout: std::time::Duration::from_millis(1),
        ..RenderOptions::default()
    };
    let e = render(&f.root(), "overlays/prod", &options).unwrap_err();
    assert!(matches!(e, RenderError::KustomizeTimeout { .. }), "{e:?}");
    assert_eq!(e.next_step(), NextStep::RetrySoon);
}

#[test]
fn kustomize_output_is_capped() {
    if !kubectl_available() {
        return;
    }
    let f = base_overlay();
    let options = RenderOptions {
        max_total_bytes: 200,
        ..RenderOptions::default()
    };
    let e = render(&f.root(), "overlays/prod", &options).unwrap_err();
    assert!(matches!(e, RenderError::KustomizeOutputTooLarge { .. }), "{e:?}");
}

use std::path::PathBuf;

use super::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spec")
        .join(rel)
}

fn diagnostics(err: Error) -> Vec<String> {
    match err {
        Error::InvalidSpec { diagnostics } => diagnostics.iter().map(ToString::to_string).collect(),
        other => panic!("expected InvalidSpec, got {other}"),
    }
}

const MINIMAL: &str = "apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: web
spec:
  source:
    repoURL: https://git.example.com/org/web.git
    ref: main
  destination:
    namespace: web
";

#[test]
fn reads_the_documented_example() {
    let apps = load_path(&fixture("guestbook.yaml")).unwrap();
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    assert_eq!(app.metadata.name, "guestbook");
    assert_eq!(app.spec.source.repo_url, "https://git.example.com/org/repo.git");
    assert_eq!(app.spec.source.ref_kind(), RefKind::Name("main".into()));
    assert_eq!(app.spec.source.path, "apps/guestbook");
    assert_eq!(app.spec.destination.context.as_deref(), Some("prod-eu"));
    assert!(app.spec.sync_policy.prune && app.spec.sync_policy.create_namespace);
    assert_eq!(app.spec.sync_policy.prune_threshold, 50);
    assert_eq!(app.spec.health_timeout, Duration::from_secs(120));
    let origin = app.origin.as_ref().unwrap();
    assert!(origin.file.ends_with("guestbook.yaml") && origin.line == 1);
}

#[test]
fn defaults_are_the_safe_ones() {
    let app = &parse_applications(MINIMAL, "m.yaml").unwrap()[0];
    assert_eq!(app.spec.sync_policy, SyncPolicy::default());
    assert!(!app.spec.sync_policy.prune, "prune must be opt-in");
    assert!(!app.spec.sync_policy.allow_empty);
    assert_eq!(app.spec.destination.context, None);
    assert_eq!(app.spec.source.path, "");
    assert_eq!(app.spec.health_timeout, Duration::from_secs(300));
}

#[test]
fn serde_round_trip_uses_camel_case() {
    let app = &parse_applications(MINIMAL, "m.yaml").unwrap()[0];
    let json = serde_json::to_value(app).unwrap();
    assert_eq!(json["spec"]["source"]["repoURL"], "https://git.example.com/org/web.git");
    assert_eq!(json["spec"]["sync"]["pruneThreshold"], 50);
    assert_eq!(json["spec"]["healthTimeout"], "5m");
    let back: Application = serde_json::from_value(json).unwrap();
    assert_eq!(back.spec, app.spec);
}

#[test]
fn directory_is_flat_sorted_and_skips_hidden_and_other_files() {
    let apps = load_path(&fixture("apps-ok")).unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a.metadata.name.as_str()).collect();
    // db.yml sorts before web.yaml; nested/ and .db-backup.yaml and README.md are not read.
    assert_eq!(names, ["db", "web", "api"]);
    assert_eq!(apps[2].origin.as_ref().unwrap().line, 14);
    assert!(matches!(apps[1].spec.source.ref_kind(), RefKind::SemverRange(_)));
    assert!(matches!(apps[2].spec.source.ref_kind(), RefKind::Commit(_)));
    assert_eq!(apps[0].spec.health_timeout, Duration::from_secs(5400));
}

#[test]
fn duplicate_names_across_files_name_both_files() {
    let err = load_path(&fixture("apps-dup")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DuplicateApplication { .. }), "{msg}");
    assert!(msg.contains("other.yaml:1") && msg.contains("web.yaml:2"), "{msg}");
}

#[test]
fn duplicate_names_in_one_file_are_refused() {
    let text = format!("{MINIMAL}---\n{MINIMAL}");
    let msg = parse_applications(&text, "two.yaml").unwrap_err().to_string();
    assert!(msg.contains("two.yaml:1") && msg.contains("two.yaml:12"), "{msg}");
}

#[test]
fn validation_errors_name_file_line_and_field_all_at_once() {
    let err = load_path(&fixture("apps-bad/web.yaml")).unwrap_err();
    let d = diagnostics(err);
    let file = fixture("apps-bad/web.yaml").display().to_string();
    assert!(d.contains(&format!("{file}:4: metadata.name: must be an RFC 1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit")), "{d:#?}");
    assert!(
        d.contains(&format!("{file}:7: spec.source.repoURL: required")),
        "{d:#?}"
    );
    assert!(
        d.contains(&format!("{file}:8: spec.source.path: must not contain '..'")),
        "{d:#?}"
    );
    assert!(
        d.iter().any(|l| l.starts_with(&format!(
            "{file}:13: spec.sync.pruneThreshold: must be between 1 and 100"
        ))),
        "{d:#?}"
    );
    assert_eq!(d.len(), 4, "{d:#?}");
}

#[test]
fn missing_required_field_points_at_its_parent() {
    let text = MINIMAL.replace("    repoURL: https://git.example.com/org/web.git\n", "");
    let d = diagnostics(parse_applications(&text, "apps/web.yaml").unwrap_err());
    assert_eq!(d, ["apps/web.yaml:6: spec.source.repoURL: required"]);
}

#[test]
fn unknown_fields_are_errors_with_their_line() {
    let d = diagnostics(load_path(&fixture("apps-bad/typo.yaml")).unwrap_err());
    assert_eq!(d.len(), 1);
    assert!(
        d[0].contains("typo.yaml:7: spec.source.repoUrl: unknown field"),
        "{d:?}"
    );
    assert!(d[0].contains("repoURL"), "suggests the right spelling: {d:?}");
    let text = MINIMAL.replace("spec:\n", "spec:\n  prune: true\n");
    let d = diagnostics(parse_applications(&text, "x.yaml").unwrap_err());
    assert!(d[0].starts_with("x.yaml:6: spec.prune: unknown field"), "{d:?}");
}

#[test]
fn malformed_durations_and_types_are_located_errors() {
    for (bad, expect) in [
        ("1.5h", "invalid duration"),
        ("10", "missing unit"),
        ("-1s", "invalid duration"),
        ("99999999999999999999h", "invalid duration"),
        ("0s", "must be greater than 0s"),
    ] {
        let text = format!("{MINIMAL}  healthTimeout: {bad}\n");
        let d = diagnostics(parse_applications(&text, "t.yaml").unwrap_err());
        assert!(d[0].starts_with("t.yaml:11: spec.healthTimeout: "), "{bad}: {d:?}");
        assert!(d[0].contains(expect), "{bad}: {d:?}");
    }
    let text = format!("{MINIMAL}  syncPolicy:\n    prune: yes\n");
    let d = diagnostics(parse_applications(&text, "t.yaml").unwrap_err());
    assert!(d[0].starts_with("t.yaml:12: spec.syncPolicy.prune: "), "{d:?}");
    let text = format!("{MINIMAL}  syncPolicy:\n    pruneThreshold: 300\n");
    let d = diagnostics(parse_applications(&text, "t.yaml").unwrap_err());
    assert!(d[0].starts_with("t.yaml:12: spec.syncPolicy.pruneThreshold: "), "{d:?}");
}

#[test]
fn other_kinds_and_non_mappings_are_refused() {
    let d = diagnostics(
        parse_applications(&MINIMAL.replace("kind: Application", "kind: Aplication"), "k.yaml").unwrap_err(),
    );
    assert_eq!(d, ["k.yaml:2: kind: must be Application"]);
    let d = diagnostics(parse_applications("- a\n- b\n", "k.yaml").unwrap_err());
    assert!(d[0].starts_with("k.yaml:1: "), "{d:?}");
    let d = diagnostics(parse_applications(&MINIMAL.replace("v1alpha1", "v1"), "k.yaml").unwrap_err());
    assert_eq!(d, ["k.yaml:1: apiVersion: must be driftless.dev/v1alpha1"]);
}

#[test]
fn repo_urls_with_passwords_or_command_transports_are_refused_without_echo() {
    for (url, needle) in [
        ("https://bob:hunter2@git.example.com/r.git", "password"),
        ("ext::sh -c touch% /tmp/pwned", "must not"),
        ("ext::ssh", "remote helpers"),
        ("-oProxyCommand=evil", "must not start with '-'"),
        ("ftp://host/r.git", "unsupported scheme"),
        ("nohost", "must be a URL"),
    ] {
        let text = MINIMAL.replace("https://git.example.com/org/web.git", &format!("{url:?}"));
        let d = diagnostics(parse_applications(&text, "u.yaml").unwrap_err());
        assert!(d[0].starts_with("u.yaml:7: spec.source.repoURL: "), "{url}: {d:?}");
        assert!(d[0].contains(needle), "{url}: {d:?}");
        assert!(!d[0].contains("hunter2"));
    }
    for ok in [
        "https://bob@git.example.com/r.git",
        "ssh://git@git.example.com:2222/r.git",
        "git@github.com:org/r.git",
        "file:///srv/r.git",
    ] {
        let text = MINIMAL.replace("https://git.example.com/org/web.git", ok);
        parse_applications(&text, "u.yaml").unwrap();
    }
}

#[test]
fn classify_ref_tells_commits_ranges_and_names_apart() {
    let sha = "0123456789ABCDEF0123456789abcdef01234567";
    assert_eq!(classify_ref(sha), RefKind::Commit(sha.to_ascii_lowercase()));
    for range in [
        ">=1.2.0 <2",
        "~1.4",
        "1.x",
        "^1.2",
        ">= 1.2, < 2",
        ">=v1.2.0",
        "1.*",
        "*",
    ] {
        assert!(matches!(classify_ref(range), RefKind::SemverRange(_)), "{range}");
    }
    let RefKind::SemverRange(req) = classify_ref(">=1.2.0 <2") else {
        unreachable!()
    };
    assert!(req.matches(&semver::Version::new(1, 9, 0)));
    assert!(!req.matches(&semver::Version::new(2, 0, 0)));
    let RefKind::SemverRange(req) = classify_ref("1.x") else {
        unreachable!()
    };
    assert!(req.matches(&semver::Version::new(1, 7, 3)));
    for name in ["main", "release/1.x-rc", "v1.2.3", "1.4", "feature/foo", "0123abc"] {
        assert_eq!(classify_ref(name), RefKind::Name(name.into()), "{name}");
    }
}

#[test]
fn invalid_refs_are_reported() {
    for bad in [
        "-upload-pack=evil",
        "a..b",
        "bad ref~1",
        ">=1.2 ||  <0.5",
        ">=",
        "~foo.bar",
        "",
    ] {
        assert!(parse_ref(bad).is_err(), "{bad}");
        // Never panics, whatever the input.
        let _ = classify_ref(bad);
    }
}

#[test]
fn rfc1123_labels() {
    for ok in ["a", "web", "web-1", "0abc", &"a".repeat(63)] {
        assert!(is_rfc1123_label(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "Web", "a_b", "a.b", &"a".repeat(64), "é"] {
        assert!(!is_rfc1123_label(bad), "{bad}");
    }
}

#[test]
fn hostile_spec_files_are_errors() {
    let bomb = "a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e]\n";
    assert!(parse_applications(bomb, "bomb.yaml").is_err());
    assert!(parse_applications(&"[".repeat(1000), "deep.yaml").is_err());
    let big = "#".repeat(2 * 1024 * 1024);
    assert!(matches!(
        parse_applications(&big, "big.yaml"),
        Err(Error::TooLarge { .. })
    ));
    assert!(parse_applications("", "empty.yaml").unwrap().is_empty());
    assert!(load_path(&fixture("does-not-exist")).is_err());
}

#[test]
fn sync_policy_accepts_the_sync_name_and_automation_fields() {
    let text = MINIMAL.replace("spec:\n", "spec:\n  sync: {automated: true, selfHeal: true, prune: true, retry: {limit: 3, backoff: 2s}, windows: [{kind: deny, schedule: \"0 22 * * *\", duration: 2h}]}\n  refreshInterval: 30s\n");
    let app = &parse_applications(&text, "m.yaml").unwrap()[0];
    let p = &app.spec.sync_policy;
    assert!(p.automated && p.self_heal && p.prune);
    assert_eq!(p.retry.limit, 3);
    assert_eq!(p.retry.delay(3), std::time::Duration::from_secs(8));
    assert_eq!(p.windows.len(), 1);
    assert_eq!(app.spec.refresh_interval, std::time::Duration::from_secs(30));
    let bad = MINIMAL.replace(
        "spec:\n",
        "spec:\n  sync: {windows: [{kind: deny, schedule: \"nope\", duration: 1h}]}\n",
    );
    let err = parse_applications(&bad, "m.yaml").unwrap_err().to_string();
    assert!(err.contains("spec.sync.windows[0].schedule"), "{err}");
}

#[test]
fn trust_gate_fields_parse_and_are_checked() {
    let ok = format!(
        "{MINIMAL}  decryption:\n    keyFile: keys/age.txt\n    secretRef: {{name: sops-age}}\n  policy:\n    paths: [policy]\n    baselines: [all]\n    repo: {{repoURL: https://git.example.com/org/policies.git}}\n"
    )
    .replace(
        "    ref: main\n",
        "    ref: main\n    verify:\n      mode: tag\n      keys: [\"ssh-ed25519 AAAAC3Nza ada\", keys/team.asc]\n",
    );
    let app = &parse_applications(&ok, "t.yaml").unwrap()[0];
    let verify = app.spec.source.verify.as_ref().unwrap();
    assert_eq!(verify.mode, "tag");
    assert!(is_inline_key(&verify.keys[0]) && !is_inline_key(&verify.keys[1]));
    let policy = app.spec.policy.as_ref().unwrap();
    assert_eq!(
        policy.repo.as_ref().unwrap().git_ref,
        "main",
        "the policy repo ref defaults to main"
    );
    assert_eq!(
        app.spec.decryption.as_ref().unwrap().secret_ref.as_ref().unwrap().name,
        "sops-age"
    );

    let bad = format!("{MINIMAL}  decryption: {{}}\n  policy:\n    paths: [../outside]\n").replace(
        "    ref: main\n",
        "    ref: main\n    verify: {mode: sometimes, keys: []}\n",
    );
    let d = diagnostics(parse_applications(&bad, "b.yaml").unwrap_err()).join("\n");
    for field in [
        "spec.source.verify.mode",
        "spec.source.verify.keys",
        "spec.decryption",
        "spec.policy.paths[0]",
    ] {
        assert!(d.contains(field), "{field} missing from:\n{d}");
    }
}

//! Configuration loading and validation errors.

use std::path::Path;

use driftless_notify::{EventKind, NotifyConfig, NotifyError, ReceiverKind, TemplateError};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn error(yaml: &str) -> NotifyError {
    NotifyConfig::parse(yaml).expect_err("config should be rejected")
}

const EXAMPLE: &str = r#"
receivers:
  - name: ops-slack
    kind: slack
    urlFile: secrets/slack-url
    template: ":rotating_light: {{app}} {{kind}} at {{shortRevision}}: {{message}}"
  - name: audit
    kind: webhook
    url: https://audit.example.com/hooks/driftless
    headers:
      Authorization: Bearer abc
    timeoutSeconds: 5
    template: '{"app": "{{app}}", "event": "{{kind}}", "commit": "{{revision}}", "when": "{{time}}"}'
subscriptions:
  - receiver: ops-slack
    apps: ["team-*", guestbook]
    events: [sync-failed, health-degraded]
  - receiver: audit
"#;

#[test]
fn loads_the_documented_example_with_a_relative_url_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    write(
        dir.path(),
        "secrets/slack-url",
        "https://hooks.slack.com/services/T0/B0/XYZ\n",
    );
    let config = NotifyConfig::load(&write(dir.path(), "notifications.yaml", EXAMPLE)).unwrap();
    assert_eq!(config.receivers.len(), 2);
    assert_eq!(config.receivers[0].kind, ReceiverKind::Slack);
    assert_eq!(
        config.receivers[0].url_file.as_deref(),
        Some(dir.path().join("secrets/slack-url").as_path())
    );
    assert_eq!(config.receivers[1].timeout_seconds, Some(5));
    assert_eq!(
        config.subscriptions[0].events,
        [EventKind::SyncFailed, EventKind::HealthDegraded]
    );
    assert!(config.subscriptions[1].apps.is_empty() && config.subscriptions[1].events.is_empty());
}

#[test]
fn loads_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"receivers": [{"name": "h", "kind": "webhook", "url": "http://127.0.0.1:8080/x"}],
                   "subscriptions": [{"receiver": "h", "events": ["drift-detected"]}]}"#;
    let config = NotifyConfig::load(&write(dir.path(), "n.json", json)).unwrap();
    assert_eq!(config.subscriptions[0].events, [EventKind::DriftDetected]);
}

#[test]
fn missing_file_and_missing_url_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        NotifyConfig::load(&dir.path().join("nope.yaml")),
        Err(NotifyError::Read { .. })
    ));
    let path = write(
        dir.path(),
        "n.yaml",
        "receivers:\n- {name: s, kind: slack, urlFile: missing}\nsubscriptions: []\n",
    );
    let e = NotifyConfig::load(&path).unwrap_err();
    assert!(
        matches!(e, NotifyError::Url { .. }) && e.to_string().contains("cannot read urlFile"),
        "{e}"
    );
}

#[test]
fn unknown_receiver_in_subscription() {
    let e = error("receivers:\n- {name: a, kind: webhook, url: 'http://h/'}\nsubscriptions:\n- receiver: b\n");
    assert!(
        matches!(e, NotifyError::UnknownReceiver { index: 1, ref receiver, .. } if receiver == "b"),
        "{e}"
    );
    assert!(e.to_string().contains("known receivers: a"), "{e}");
}

#[test]
fn duplicate_or_empty_receiver_names() {
    let dup = "receivers:\n- {name: a, kind: webhook, url: 'http://h/'}\n- {name: a, kind: slack, url: 'http://h/'}\n";
    assert!(matches!(error(dup), NotifyError::ReceiverName { .. }));
    assert!(matches!(
        error("receivers:\n- {name: '', kind: webhook, url: 'http://h/'}\n"),
        NotifyError::ReceiverName { .. }
    ));
}

#[test]
fn bad_urls_are_rejected_without_showing_them() {
    for (url, expected) in [
        ("ftp://files.example.com/secret-path", "scheme must be http or https"),
        ("not a url secret-path", "not a valid URL"),
        ("http://:80/secret-path", "not a valid URL"),
        ("file:///secret-path", "scheme must be http or https"),
    ] {
        let e = error(&format!("receivers:\n- {{name: a, kind: slack, url: '{url}'}}\n"));
        let text = e.to_string();
        assert!(matches!(e, NotifyError::Url { .. }), "{url}: {text}");
        assert!(text.contains(expected), "{url}: {text}");
        assert!(!text.contains("secret-path"), "{url}: {text}");
    }
    let e = error("receivers:\n- {name: a, kind: slack}\n");
    assert!(e.to_string().contains("set `url` or `urlFile`"), "{e}");
    let e = error("receivers:\n- {name: a, kind: slack, url: 'http://h/', urlFile: f}\n");
    assert!(e.to_string().contains("not both"), "{e}");
}

#[test]
fn unknown_placeholder_is_a_load_error() {
    let e = error("receivers:\n- {name: a, kind: slack, url: 'http://h/', template: 'hi {{application}}'}\n");
    assert!(
        matches!(e, NotifyError::Template { source: TemplateError::UnknownPlaceholder { ref name, .. }, .. } if name == "application"),
        "{e}"
    );
    assert!(e.to_string().contains("unknown placeholder `{{application}}`"), "{e}");
}

#[test]
fn webhook_template_must_be_json() {
    let e =
        error("receivers:\n- name: a\n  kind: webhook\n  url: 'http://h/'\n  template: '{\"n\": {{details.count}}}'\n");
    assert!(
        matches!(
            e,
            NotifyError::Template {
                source: TemplateError::NotJson { .. },
                ..
            }
        ),
        "{e}"
    );
    // The same text is fine as Slack message text.
    NotifyConfig::parse(
        "receivers:\n- name: a\n  kind: slack\n  url: 'http://h/'\n  template: 'n: {{details.count}}'\n",
    )
    .unwrap();
}

#[test]
fn unknown_fields_are_errors() {
    let e = error("receivers: []\nsubscription: []\n");
    assert!(
        matches!(e, NotifyError::Parse { .. }) && e.to_string().contains("subscription"),
        "{e}"
    );
    let e = error("receivers:\n- {name: a, kind: webhook, url: 'http://h/', timeout: 5}\n");
    assert!(
        matches!(e, NotifyError::Parse { .. }) && e.to_string().contains("timeout"),
        "{e}"
    );
    let e = error("receivers:\n- {name: a, kind: teams, url: 'http://h/'}\n");
    assert!(matches!(e, NotifyError::Parse { .. }), "{e}");
    let e = error("subscriptions:\n- {receiver: a, events: [synced]}\n");
    assert!(matches!(e, NotifyError::Parse { .. }), "{e}");
    let e = error("{\"receivers\": [], \"extra\": 1}");
    assert!(
        matches!(e, NotifyError::Parse { .. }) && e.to_string().contains("extra"),
        "{e}"
    );
}

#[test]
fn headers_timeouts_and_patterns_are_checked() {
    let e = error("receivers:\n- name: a\n  kind: webhook\n  url: 'http://h/'\n  headers: {'Bad Name': x}\n");
    assert!(matches!(e, NotifyError::Header { .. }), "{e}");
    let e = error(
        "receivers:\n- name: a\n  kind: webhook\n  url: 'http://h/'\n  headers: {X-Token: \"line\\nbreak-SECRET\"}\n",
    );
    assert!(
        matches!(e, NotifyError::Header { .. }) && !e.to_string().contains("SECRET"),
        "{e}"
    );
    let e = error("receivers:\n- {name: a, kind: webhook, url: 'http://h/', timeoutSeconds: 0}\n");
    assert!(matches!(e, NotifyError::Timeout { value: 0, .. }), "{e}");
    let e = error(
        "receivers:\n- {name: a, kind: webhook, url: 'http://h/'}\nsubscriptions:\n- {receiver: a, apps: ['']}\n",
    );
    assert!(matches!(e, NotifyError::EmptyAppPattern { index: 1 }), "{e}");
}

#[test]
fn empty_config_is_valid() {
    let config = NotifyConfig::parse("{}").unwrap();
    assert!(config.receivers.is_empty() && config.subscriptions.is_empty());
}

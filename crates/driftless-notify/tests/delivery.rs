//! Delivery against a local scripted HTTP server: each receiver kind, subscriptions, retries,
//! timeouts, the bounded queue and URL redaction.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestServer, closed_port, fast_options};
use driftless_notify::{Event, EventKind, Notifier, NotifierOptions, NotifyConfig, RetryPolicy};
use serde_json::json;

const FLUSH: Duration = Duration::from_secs(20);

fn event(kind: EventKind, app: &str) -> Event {
    Event {
        kind,
        app: app.to_string(),
        revision: "abc1234def5678abc1234def5678abc1234def56".to_string(),
        message: "3 objects applied".to_string(),
        details: json!({"objects": ["Deployment/guestbook/web"], "durationMs": 1200}),
        time: 1_714_564_800,
    }
}

fn config(yaml: &str) -> NotifyConfig {
    NotifyConfig::parse(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[tokio::test]
async fn webhook_posts_the_event_as_json_with_headers() {
    let server = TestServer::start(vec![]).await;
    let notifier = Notifier::with_options(
        config(&format!(
            "receivers:\n- name: hook\n  kind: webhook\n  url: {}/hooks/driftless\n  headers:\n    X-Token: s3cret\n\
             subscriptions:\n- receiver: hook\n",
            server.base
        )),
        fast_options(),
    );
    let sent = event(EventKind::SyncSucceeded, "guestbook");
    notifier.notify(sent.clone());
    notifier.flush(FLUSH).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hooks/driftless"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-token"), Some("s3cret"));
    assert_eq!(r.json()["kind"], "sync-succeeded");
    assert_eq!(serde_json::from_slice::<Event>(&r.body).unwrap(), sent);
    let stats = notifier.stats();
    assert_eq!(
        (stats.sent(), stats.failed(), stats.dropped(), stats.pending),
        (1, 0, 0, 0)
    );
}

#[tokio::test]
async fn webhook_template_renders_the_body() {
    let server = TestServer::start(vec![]).await;
    let yaml = format!(
        "receivers:\n- name: hook\n  kind: webhook\n  url: {}/t\n  template: '{{\"summary\": \"{{{{app}}}} {{{{kind}}}} \
         at {{{{shortRevision}}}}\", \"took\": \"{{{{details.durationMs}}}}\", \"msg\": \"{{{{message}}}}\"}}'\n\
         subscriptions:\n- receiver: hook\n",
        server.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    let mut e = event(EventKind::SyncFailed, "guestbook");
    e.message = "apply failed: \"quoted\"\nsecond line".into();
    notifier.notify(e);
    notifier.flush(FLUSH).await;
    let body = server.requests()[0].json();
    assert_eq!(
        body,
        json!({"summary": "guestbook sync-failed at abc1234", "took": "1200",
               "msg": "apply failed: \"quoted\"\nsecond line"})
    );
}

#[tokio::test]
async fn slack_posts_text_default_and_templated() {
    let server = TestServer::start(vec![]).await;
    let yaml = format!(
        "receivers:\n- name: plain\n  kind: slack\n  url: {0}/services/T/B/X\n\
         - name: custom\n  kind: slack\n  url: {0}/custom\n  template: '*{{{{app}}}}* is {{{{kind}}}}: {{{{message}}}}'\n\
         subscriptions:\n- receiver: plain\n- receiver: custom\n",
        server.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    let mut e = event(EventKind::SyncSucceeded, "guestbook");
    e.message = "3 objects <applied>".into();
    notifier.notify(e);
    notifier.flush(FLUSH).await;

    let mut requests = server.requests();
    requests.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/custom");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({"text": "*guestbook* is sync-succeeded: 3 objects &lt;applied&gt;"})
    );
    assert_eq!(
        requests[1].json(),
        json!({"text": ":white_check_mark: guestbook synced to abc1234: 3 objects &lt;applied&gt;"})
    );
    assert_eq!(notifier.stats().sent(), 2);
}

#[tokio::test]
async fn subscriptions_filter_by_app_glob_and_event_kind() {
    let team = TestServer::start(vec![]).await;
    let all = TestServer::start(vec![]).await;
    let yaml = format!(
        "receivers:\n- name: team\n  kind: webhook\n  url: {}/\n- name: all\n  kind: webhook\n  url: {}/\n\
         subscriptions:\n\
         - receiver: team\n  apps: ['team-*', exact]\n  events: [sync-failed, health-degraded]\n\
         - receiver: team\n  apps: ['team-?']\n  events: [sync-failed]\n\
         - receiver: all\n",
        team.base, all.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    notifier.notify(event(EventKind::SyncFailed, "team-a")); // team (both subscriptions: once), all
    notifier.notify(event(EventKind::SyncSucceeded, "team-a")); // all
    notifier.notify(event(EventKind::HealthDegraded, "exact")); // team, all
    notifier.notify(event(EventKind::SyncFailed, "other")); // all
    notifier.notify(event(EventKind::DriftDetected, "team-b")); // all
    notifier.flush(FLUSH).await;

    let got: Vec<(String, String)> = team
        .requests()
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["app"].as_str().unwrap().to_string(),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("team-a".into(), "sync-failed".into()),
            ("exact".into(), "health-degraded".into())
        ]
    );
    assert_eq!(all.requests().len(), 5);
    let stats = notifier.stats();
    assert_eq!(stats.receivers["team"].sent, 2);
    assert_eq!(stats.receivers["all"].sent, 5);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = TestServer::start(vec![Reply::Status(500), Reply::Status(503), Reply::Status(200)]).await;
    let yaml = format!(
        "receivers:\n- {{name: h, kind: webhook, url: '{}/'}}\nsubscriptions:\n- receiver: h\n",
        server.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    notifier.flush(FLUSH).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].body, requests[2].body, "the same body is sent again");
    let stats = &notifier.stats().receivers["h"];
    assert_eq!((stats.sent, stats.failed), (1, 0));
}

#[tokio::test]
async fn server_errors_give_up_after_max_attempts() {
    let server = TestServer::start(vec![Reply::Status(502); 10]).await;
    let yaml = format!(
        "receivers:\n- {{name: h, kind: webhook, url: '{}/'}}\nsubscriptions:\n- receiver: h\n",
        server.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    notifier.flush(FLUSH).await;
    assert_eq!(server.requests().len(), 5);
    let stats = &notifier.stats().receivers["h"];
    assert_eq!((stats.sent, stats.failed), (0, 1));
    assert!(
        stats.last_error.as_deref().unwrap().contains("502 after 5 attempt(s)"),
        "{stats:?}"
    );
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let retry_after = Reply::Full(429, vec![("Retry-After".into(), "1".into())], String::new());
    let server = TestServer::start(vec![retry_after, Reply::Status(200)]).await;
    let yaml = format!(
        "receivers:\n- {{name: h, kind: slack, url: '{}/'}}\nsubscriptions:\n- receiver: h\n",
        server.base
    );
    // Backoff is 10 ms: a gap of about a second can only come from Retry-After.
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    notifier.notify(event(EventKind::DriftDetected, "guestbook"));
    notifier.flush(FLUSH).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_millis(950), "gap {gap:?}");
    assert_eq!(notifier.stats().receivers["h"].sent, 1);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let retry_after = Reply::Full(429, vec![("Retry-After".into(), "86400".into())], String::new());
    let server = TestServer::start(vec![retry_after, Reply::Status(204)]).await;
    let yaml = format!(
        "receivers:\n- {{name: h, kind: webhook, url: '{}/'}}\nsubscriptions:\n- receiver: h\n",
        server.base
    );
    let mut options = fast_options();
    options.retry.max_retry_after = Duration::from_millis(200);
    let notifier = Notifier::with_options(config(&yaml), options);
    notifier.notify(event(EventKind::DriftDetected, "guestbook"));
    notifier.flush(FLUSH).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(190) && gap < Duration::from_secs(5),
        "gap {gap:?}"
    );
    assert_eq!(notifier.stats().receivers["h"].sent, 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = TestServer::start(vec![Reply::Full(400, vec![], "invalid_payload".into())]).await;
    let yaml = format!(
        "receivers:\n- {{name: s, kind: slack, url: '{}/'}}\nsubscriptions:\n- receiver: s\n",
        server.base
    );
    let notifier = Notifier::with_options(config(&yaml), fast_options());
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    notifier.flush(FLUSH).await;
    assert_eq!(server.requests().len(), 1);
    let stats = &notifier.stats().receivers["s"];
    assert_eq!((stats.sent, stats.failed), (0, 1));
    let error = stats.last_error.as_deref().unwrap();
    assert!(error.contains("400") && error.contains("invalid_payload"), "{error}");
}

#[tokio::test]
async fn hanging_receiver_times_out_and_counts_as_failed() {
    let server = TestServer::start(vec![Reply::Hang, Reply::Hang]).await;
    let yaml = format!(
        "receivers:\n- {{name: slow, kind: webhook, url: '{}/', timeoutSeconds: 1}}\nsubscriptions:\n- receiver: slow\n",
        server.base
    );
    let mut options = fast_options();
    options.retry.max_attempts = 2;
    let notifier = Notifier::with_options(config(&yaml), options);
    let start = Instant::now();
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "notify must not wait for delivery"
    );
    notifier.flush(FLUSH).await;
    assert!(start.elapsed() >= Duration::from_secs(2), "two attempts of 1 s each");
    assert_eq!(server.requests().len(), 2, "timeouts are retried");
    let stats = &notifier.stats().receivers["slow"];
    assert_eq!((stats.sent, stats.failed), (0, 1));
    assert!(stats.last_error.as_deref().unwrap().contains("timed out"), "{stats:?}");
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let server = TestServer::start(vec![Reply::Hang; 100]).await;
    let yaml = format!(
        "receivers:\n- {{name: slow, kind: webhook, url: '{}/', timeoutSeconds: 30}}\n\
         - {{name: fast, kind: webhook, url: '{}/ok'}}\nsubscriptions:\n- receiver: slow\n",
        server.base, server.base
    );
    let options = NotifierOptions {
        queue_capacity: 2,
        retry: RetryPolicy {
            max_attempts: 1,
            ..fast_options().retry
        },
    };
    let notifier = Notifier::with_options(config(&yaml), options);
    notifier.notify(event(EventKind::SyncFailed, "app-0"));
    server.wait_for(1).await; // the worker holds the first event in flight
    let start = Instant::now();
    for i in 1..=50 {
        notifier.notify(event(EventKind::SyncFailed, &format!("app-{i}")));
    }
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(500), "notify blocked: {elapsed:?}");
    let stats = notifier.stats();
    assert_eq!(stats.receivers["slow"].dropped, 48, "2 queued, 48 dropped");
    assert_eq!(stats.pending, 3);
    assert_eq!(
        stats.receivers["fast"],
        Default::default(),
        "no subscription, nothing sent"
    );
    // flush gives up at its timeout instead of waiting for the hanging receiver.
    let start = Instant::now();
    notifier.flush(Duration::from_millis(100)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn errors_never_show_the_secret_part_of_urls() {
    let port = closed_port().await;
    let echo = TestServer::start(vec![Reply::EchoPath(404)]).await;
    let yaml = format!(
        "receivers:\n\
         - {{name: dead, kind: slack, url: 'http://127.0.0.1:{port}/services/T0AAA/B0BBB/SECRETTOKEN'}}\n\
         - {{name: echo, kind: slack, url: '{}/services/T0AAA/B0BBB/SECRETTOKEN?sig=SIGNATURE'}}\n\
         subscriptions:\n- receiver: dead\n- receiver: echo\n",
        echo.base
    );
    let mut options = fast_options();
    options.retry.max_attempts = 2;
    let notifier = Notifier::with_options(config(&yaml), options);
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    notifier.flush(FLUSH).await;

    let stats = notifier.stats();
    let dead = stats.receivers["dead"].last_error.clone().unwrap();
    assert!(dead.contains(&format!("http://127.0.0.1:{port}/…")), "{dead}");
    let echoed = stats.receivers["echo"].last_error.clone().unwrap();
    assert!(echoed.contains("404") && echoed.contains("no route for"), "{echoed}");
    for text in [&dead, &echoed, &format!("{stats:?}"), &format!("{notifier:?}")] {
        for secret in ["SECRETTOKEN", "T0AAA", "SIGNATURE", "/services"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
    assert_eq!(stats.failed(), 2);
}

#[tokio::test]
async fn disabled_notifier_does_nothing() {
    let notifier = Notifier::disabled();
    assert!(!notifier.is_enabled());
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
    notifier.flush(Duration::from_secs(1)).await;
    assert_eq!(notifier.stats(), Default::default());
}

#[test]
fn notifier_outside_a_runtime_is_disabled_not_a_panic() {
    let notifier = Notifier::new(config(
        "receivers:\n- {name: h, kind: webhook, url: 'http://127.0.0.1:9/'}\n",
    ));
    assert!(!notifier.is_enabled());
    notifier.notify(event(EventKind::SyncFailed, "guestbook"));
}

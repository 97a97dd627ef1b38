//! The JSON API: auth matrix, errors, health, readiness and metrics.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use driftless_server::{Role, ServerConfig, SyncRequest, Tokens, router};

const ADMIN: &str = "admin-token-0123456789";
const READ: &str = "read-token-0123456789";

fn setup(tokens: Tokens) -> (Arc<FakeBackend>, Router) {
    let backend = Arc::new(FakeBackend::default());
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.tokens = tokens;
    (backend.clone(), router(backend, &config))
}

fn with_tokens() -> (Arc<FakeBackend>, Router) {
    setup(Tokens::from_entries([
        (ADMIN, Role::Admin, "ops"),
        (READ, Role::Read, "ci"),
    ]))
}

fn req(method: &str, path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

const READS: [&str; 4] = [
    "/api/v1/apps",
    "/api/v1/apps/guestbook",
    "/api/v1/apps/guestbook/diff",
    "/api/v1/apps/guestbook/history?limit=5",
];
const WRITES: [&str; 3] = [
    "/api/v1/apps/guestbook/refresh",
    "/api/v1/apps/guestbook/sync",
    "/api/v1/apps/guestbook/rollback/3",
];

#[tokio::test]
async fn auth_matrix_with_token_file() {
    let (backend, app) = with_tokens();
    for path in READS {
        let r = send(&app, req("GET", path, None, "")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_eq!(
            send(&app, req("GET", path, Some("nope"), "")).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(&app, req("GET", path, Some(READ), "")).await.status,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            send(&app, req("GET", path, Some(ADMIN), "")).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    for path in WRITES {
        assert_eq!(
            send(&app, req("POST", path, None, "")).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            send(&app, req("POST", path, Some("nope"), "")).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = send(&app, req("POST", path, Some(READ), "")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.json()["code"], 403);
        let r = send(&app, req("POST", path, Some(ADMIN), "")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    }
    // Only the authorized calls reached the backend.
    assert_eq!(
        backend.calls(),
        vec![
            "apps",
            "apps",
            "app guestbook",
            "app guestbook",
            "diff guestbook",
            "diff guestbook",
            "history guestbook 5",
            "history guestbook 5",
            "refresh guestbook",
            "sync guestbook",
            "rollback guestbook 3",
        ]
    );
}

#[tokio::test]
async fn authorization_header_forms() {
    let (_, app) = with_tokens();
    for header in [format!("bearer {READ}"), format!("BEARER  {READ} ")] {
        let r = Request::get("/api/v1/apps")
            .header("authorization", header.as_str())
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, r).await.status, StatusCode::OK, "{header}");
    }
    for header in [
        format!("Basic {READ}"),
        READ.to_string(),
        "Bearer ".to_string(),
        format!("Bearer {READ}x"),
    ] {
        let r = Request::get("/api/v1/apps")
            .header("authorization", header.as_str())
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, r).await.status, StatusCode::UNAUTHORIZED, "{header}");
    }
}

#[tokio::test]
async fn no_token_file_allows_reads_refuses_mutations() {
    let (backend, app) = setup(Tokens::none());
    for path in READS {
        assert_eq!(
            send(&app, req("GET", path, None, "")).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    for path in WRITES {
        for token in [None, Some(ADMIN)] {
            let r = send(&app, req("POST", path, token, "")).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
            assert!(r.json()["error"].as_str().unwrap().contains("--api-token-file"));
        }
    }
    assert!(
        !backend
            .calls()
            .iter()
            .any(|c| c.starts_with("sync") || c.starts_with("refresh") || c.starts_with("rollback"))
    );
}

#[tokio::test]
async fn unauthenticated_callers_cannot_probe_app_existence() {
    let (backend, app) = with_tokens();
    let a = send(&app, req("GET", "/api/v1/apps/guestbook", None, "")).await;
    let b = send(&app, req("GET", "/api/v1/apps/does-not-exist", None, "")).await;
    let c = send(&app, req("GET", "/api/v1/no/such/route", None, "")).await;
    assert_eq!(
        (a.status, b.status, c.status),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
    assert_eq!(a.body, b.body);
    assert_eq!(a.body, c.body);
    assert!(backend.calls().is_empty(), "auth must run before lookup");
    // Authenticated: a missing app is 404 with JSON.
    let r = send(&app, req("GET", "/api/v1/apps/does-not-exist", Some(READ), "")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["code"], 404);
}

#[tokio::test]
async fn errors_are_json_and_hide_internal_detail() {
    let (_, app) = with_tokens();
    let r = send(&app, req("GET", "/api/v1/apps/boom", Some(ADMIN), "")).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json(), serde_json::json!({"error": "internal error", "code": 500}));
    for leak in ["hunter2", "/var/lib", "state.db", ADMIN] {
        assert!(!r.text().contains(leak));
    }
    let r = send(&app, req("POST", "/api/v1/apps/busy/sync", Some(ADMIN), "")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["code"], 409);
    for (method, path, body, status) in [
        (
            "GET",
            "/api/v1/apps/guestbook/history?limit=abc",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/v1/apps/guestbook/history?limit=0",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/v1/apps/guestbook/history?limit=-1",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/v1/apps/guestbook/rollback/x1",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/v1/apps/guestbook/sync",
            "{\"prune\": \"yes\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/v1/apps/guestbook/sync",
            "not json",
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/api/v1/apps/guestbook/sync", "", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/nothing-here", "", StatusCode::NOT_FOUND),
    ] {
        let r = send(&app, req(method, path, Some(ADMIN), body)).await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(r.json()["code"], status.as_u16(), "{method} {path}");
        assert!(r.json()["error"].is_string());
    }
    let big = format!("{{\"prune\": true, \"x\": \"{}\"}}", "a".repeat(100 * 1024));
    let r = send(&app, req("POST", "/api/v1/apps/guestbook/sync", Some(ADMIN), &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn sync_options_and_history_limits() {
    let (backend, app) = with_tokens();
    let r = send(&app, req("POST", "/api/v1/apps/guestbook/sync", Some(ADMIN), "")).await;
    assert_eq!(r.json(), serde_json::json!({"phase": "Succeeded"}));
    let body = r#"{"prune": true, "dryRun": true, "confirmPrune": true, "forceConflicts": true}"#;
    send(&app, req("POST", "/api/v1/apps/guestbook/sync", Some(ADMIN), body)).await;
    send(
        &app,
        req("POST", "/api/v1/apps/guestbook/sync", Some(ADMIN), r#"{"prune": true}"#),
    )
    .await;
    assert_eq!(
        *backend.syncs.lock().unwrap(),
        vec![
            SyncRequest::default(),
            SyncRequest {
                prune: true,
                dry_run: true,
                confirm_prune: true,
                force_conflicts: true
            },
            SyncRequest {
                prune: true,
                ..Default::default()
            },
        ]
    );
    send(&app, req("GET", "/api/v1/apps/guestbook/history", Some(READ), "")).await;
    send(
        &app,
        req("GET", "/api/v1/apps/guestbook/history?limit=999999", Some(READ), ""),
    )
    .await;
    let calls = backend.calls();
    assert!(calls.contains(&"history guestbook 20".to_string()));
    assert!(calls.contains(&"history guestbook 1000".to_string()));
    let r = send(&app, req("GET", "/api/v1/apps", Some(READ), "")).await;
    let apps = r.json();
    assert_eq!(apps[0]["name"], "guestbook");
    assert_eq!(apps[0]["sync"], "Synced");
    assert_eq!(apps[0]["health"], "Healthy");
    assert_eq!(apps[0]["revision"], "abc123");
    assert_eq!(apps[0]["lastSync"], serde_json::Value::Null);
}

#[tokio::test]
async fn health_and_readiness() {
    let (backend, app) = with_tokens();
    assert_eq!(
        send(&app, req("GET", "/healthz", None, "")).await.status,
        StatusCode::OK
    );
    let r = send(&app, req("GET", "/readyz", None, "")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["code"], 503);
    backend.set_ready(true);
    assert_eq!(send(&app, req("GET", "/readyz", None, "")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, req("GET", "/healthz", None, "")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_text_and_auth() {
    // No token file: open, as Prometheus expects.
    let (_, app) = setup(Tokens::none());
    let r = send(&app, req("GET", "/metrics", None, "")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(r.text(), "# TYPE driftless_up gauge\ndriftless_up 1\n");
    // Token file: read or admin tokens.
    let (_, app) = with_tokens();
    assert_eq!(
        send(&app, req("GET", "/metrics", None, "")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, req("GET", "/metrics", Some(READ), "")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, req("GET", "/metrics", Some(ADMIN), "")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, format!("# tokens\n{ADMIN} admin ops\n\n{READ} read ci\n")).unwrap();
    let (_, app) = setup(Tokens::load(&path).unwrap());
    assert_eq!(
        send(&app, req("POST", "/api/v1/apps/guestbook/refresh", Some(READ), ""))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, req("POST", "/api/v1/apps/guestbook/refresh", Some(ADMIN), ""))
            .await
            .status,
        StatusCode::OK
    );
}

//! Webhook receiver over HTTP: signatures, forges, limits and robustness.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use driftless_server::webhook::hmac_sha256_hex;
use driftless_server::{Forge, PushEvent, ServerConfig, WebhookSecrets, router};

const SECRET: &str = "webhook-secret-123";

fn setup(secrets: WebhookSecrets) -> (Arc<FakeBackend>, Router) {
    let backend = Arc::new(FakeBackend::default());
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.webhook_secrets = secrets;
    config.max_webhook_body = 64 * 1024;
    (backend.clone(), router(backend, &config))
}

fn signed() -> (Arc<FakeBackend>, Router) {
    setup(WebhookSecrets::shared(SECRET))
}

/// Headers a forge sends for a push, signed with `secret`.
fn push_headers(forge: Forge, body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    let mac = hmac_sha256_hex(secret.as_bytes(), body);
    match forge {
        Forge::GitHub => vec![
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", format!("sha256={mac}")),
        ],
        Forge::Gitea => vec![
            ("x-github-event", "push".into()),
            ("x-gitea-event", "push".into()),
            ("x-gitea-signature", mac),
        ],
        Forge::GitLab => vec![
            ("x-gitlab-event", "Push Hook".into()),
            ("x-gitlab-token", secret.into()),
        ],
        Forge::BitbucketCloud => vec![
            ("x-event-key", "repo:push".into()),
            ("x-hook-uuid", "0b6b5b2a".into()),
            ("x-hub-signature", format!("sha256={mac}")),
        ],
        Forge::BitbucketServer => {
            vec![
                ("x-event-key", "repo:refs_changed".into()),
                ("x-hub-signature", format!("sha256={mac}")),
            ]
        }
        Forge::Generic => vec![("x-driftless-signature", format!("sha256={mac}"))],
    }
}

fn request(path: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from(body)).unwrap()
}

fn sample(forge: Forge) -> Vec<u8> {
    match forge {
        Forge::GitHub => github_push(),
        Forge::Gitea => gitea_push(),
        Forge::GitLab => gitlab_push(),
        Forge::BitbucketCloud => bitbucket_cloud_push(),
        Forge::BitbucketServer => bitbucket_server_push(),
        Forge::Generic => generic_push(),
    }
}

fn expected(forge: Forge) -> Vec<PushEvent> {
    let ev = |urls: &[&str], r: &str, after: Option<&str>| PushEvent {
        forge,
        repo_urls: urls.iter().map(|s| s.to_string()).collect(),
        git_ref: r.into(),
        after: after.map(str::to_string),
    };
    match forge {
        Forge::GitHub => vec![ev(
            &[
                "https://github.com/Codertocat/Hello-World.git",
                "git@github.com:Codertocat/Hello-World.git",
                "git://github.com/Codertocat/Hello-World.git",
                "https://github.com/Codertocat/Hello-World",
            ],
            "refs/heads/main",
            Some(SHA),
        )],
        Forge::Gitea => vec![ev(
            &[
                "http://localhost:3000/gitea/webhooks.git",
                "ssh://gitea@localhost:2222/gitea/webhooks.git",
                "http://localhost:3000/gitea/webhooks",
            ],
            "refs/heads/develop",
            Some("bffeb74224043ba2feb48d137756c8a9331c449a"),
        )],
        Forge::GitLab => vec![ev(
            &[
                "http://example.com/mike/diaspora.git",
                "git@example.com:mike/diaspora.git",
                "http://example.com/mike/diaspora",
            ],
            "refs/heads/master",
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
        )],
        Forge::BitbucketCloud => {
            let urls = [
                "https://bitbucket.org/team/deploy",
                "https://bitbucket.org/team/deploy.git",
                "git@bitbucket.org:team/deploy.git",
                "ssh://git@bitbucket.org/team/deploy.git",
            ];
            vec![
                ev(&urls, "refs/heads/main", Some(SHA)),
                ev(&urls, "refs/tags/v0.1.0", None),
            ]
        }
        Forge::BitbucketServer => vec![ev(
            &[
                "ssh://git@bitbucket.example.com:7999/proj/repository.git",
                "https://bitbucket.example.com/scm/proj/repository.git",
                "https://bitbucket.example.com/projects/PROJ/repos/repository/browse",
            ],
            "refs/heads/master",
            Some("178864a7d521b6f5e720b386b2c2b0ef8563e0dc"),
        )],
        Forge::Generic => vec![ev(
            &["https://git.example.com/org/deploy.git"],
            "refs/heads/main",
            Some(SHA),
        )],
    }
}

#[tokio::test]
async fn every_forge_valid_push_detected_and_explicit() {
    for forge in Forge::ALL {
        for path in ["/api/webhook".to_string(), format!("/api/webhook/{}", forge.as_str())] {
            let (backend, app) = signed();
            let body = sample(forge);
            let resp = send(&app, request(&path, &push_headers(forge, &body, SECRET), body)).await;
            assert_eq!(resp.status, StatusCode::OK, "{forge} {path}: {}", resp.text());
            assert_eq!(resp.json()["status"], "accepted");
            assert_eq!(resp.json()["refreshed"], serde_json::json!(["guestbook"]));
            assert_eq!(backend.pushes(), expected(forge), "{forge} {path}");
            assert_eq!(
                backend.webhooks(),
                vec![(forge.as_str().to_string(), "accepted".to_string())]
            );
        }
    }
}

#[tokio::test]
async fn per_forge_secret_is_used() {
    let (backend, app) = setup(WebhookSecrets::shared(SECRET).with_forge(Forge::GitHub, "github-only"));
    let body = github_push();
    let resp = send(
        &app,
        request(
            "/api/webhook",
            &push_headers(Forge::GitHub, &body, SECRET),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    let resp = send(
        &app,
        request("/api/webhook", &push_headers(Forge::GitHub, &body, "github-only"), body),
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(backend.pushes().len(), 1);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused() {
    for forge in Forge::ALL {
        let body = sample(forge);
        // Wrong secret.
        let (backend, app) = signed();
        let resp = send(
            &app,
            request(
                "/api/webhook",
                &push_headers(forge, &body, "wrong-secret"),
                body.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{forge}");
        assert_eq!(resp.json()["code"], 401);
        assert!(!resp.text().contains(SECRET));
        assert_eq!(
            backend.webhooks(),
            vec![(forge.as_str().into(), "bad_signature".into())]
        );

        // Signed body, then tampered with.
        let mut tampered = body.clone();
        let headers = push_headers(forge, &body, SECRET);
        tampered.extend_from_slice(b" ");
        let resp = send(&app, request("/api/webhook", &headers, tampered)).await;
        if forge == Forge::GitLab {
            // GitLab's token does not cover the body; a valid token accepts any body.
            assert_eq!(resp.status, StatusCode::OK);
            continue;
        }
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{forge} tampered");

        // Signature header removed (event header kept).
        let (backend, app) = signed();
        let headers: Vec<_> = push_headers(forge, &body, SECRET)
            .into_iter()
            .filter(|(k, _)| !k.contains("signature") && !k.contains("token"))
            .collect();
        let resp = send(
            &app,
            request(&format!("/api/webhook/{}", forge.as_str()), &headers, body.clone()),
        )
        .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{forge} unsigned");
        assert_eq!(
            backend.webhooks(),
            vec![(forge.as_str().into(), "unauthenticated".into())]
        );
        assert!(backend.pushes().is_empty());
    }
}

#[tokio::test]
async fn wrong_gitlab_token_is_refused() {
    let (backend, app) = signed();
    let body = gitlab_push();
    for token in ["", "webhook-secret-12", "webhook-secret-1234", "WEBHOOK-SECRET-123"] {
        let headers = vec![
            ("x-gitlab-event", "Push Hook".to_string()),
            ("x-gitlab-token", token.to_string()),
        ];
        let resp = send(&app, request("/api/webhook", &headers, body.clone())).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert!(backend.pushes().is_empty());
}

#[tokio::test]
async fn signature_format_variants() {
    let (backend, app) = signed();
    let body = github_push();
    let mac = hmac_sha256_hex(SECRET.as_bytes(), &body);
    for sig in [
        format!("sha1={mac}"),
        mac.clone(),
        format!("sha256={}", &mac[..63]),
        "sha256=".into(),
    ] {
        let headers = vec![
            ("x-github-event", "push".to_string()),
            ("x-hub-signature-256", sig.clone()),
        ];
        let resp = send(&app, request("/api/webhook", &headers, body.clone())).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{sig}");
    }
    // Upper-case hex is fine.
    let headers = vec![
        ("x-github-event", "push".to_string()),
        ("x-hub-signature-256", format!("sha256={}", mac.to_uppercase())),
    ];
    assert_eq!(
        send(&app, request("/api/webhook", &headers, body.clone())).await.status,
        StatusCode::OK
    );
    // Gitea also accepts the GitHub-style header (Forgejo sends both).
    let body = gitea_push();
    let mac = hmac_sha256_hex(SECRET.as_bytes(), &body);
    let headers = vec![
        ("x-forgejo-event", "push".to_string()),
        ("x-hub-signature-256", format!("sha256={mac}")),
    ];
    assert_eq!(
        send(&app, request("/api/webhook", &headers, body)).await.status,
        StatusCode::OK
    );
    assert_eq!(backend.pushes().len(), 2);
}

#[tokio::test]
async fn no_secret_configured_never_accepts() {
    let (backend, app) = setup(WebhookSecrets::default());
    for forge in Forge::ALL {
        let body = sample(forge);
        let resp = send(&app, request("/api/webhook", &push_headers(forge, &body, SECRET), body)).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{forge}");
        assert_eq!(resp.json()["error"], "webhook secret not configured");
    }
    assert!(backend.pushes().is_empty());
    assert!(backend.webhooks().iter().all(|(_, r)| r == "unauthenticated"));
}

#[tokio::test]
async fn oversized_body_is_413_before_verification() {
    let (backend, app) = signed();
    let body = vec![b' '; 64 * 1024 + 1];
    let headers = push_headers(Forge::GitHub, &body, SECRET);
    // With Content-Length.
    let mut req = request("/api/webhook", &headers, body.clone());
    req.headers_mut().insert("content-length", body.len().into());
    let resp = send(&app, req).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.json()["code"], 413);
    // Without Content-Length (streamed): the limited read refuses it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let mut req = request("/api/webhook", &headers, Vec::new());
    *req.body_mut() = Body::from_stream(futures::stream::iter(chunks));
    let resp = send(&app, req).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A lying Content-Length with an unsigned body is still 413 (size before authenticity).
    let mut req = request("/api/webhook/github", &[("x-github-event", "push".into())], Vec::new());
    req.headers_mut().insert("content-length", "999999999".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(backend.pushes().is_empty());
    assert!(backend.webhooks().iter().all(|(_, r)| r == "too_large"));
    // Exactly at the limit is fine (and then fails JSON parsing with 400).
    let body = vec![b' '; 64 * 1024];
    let resp = send(
        &app,
        request("/api/webhook", &push_headers(Forge::GitHub, &body, SECRET), body),
    )
    .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn malformed_payloads_are_400() {
    let (backend, app) = signed();
    for (forge, body) in [
        (Forge::GitHub, b"{not json".to_vec()),
        (Forge::GitHub, br#"{"ref": "refs/heads/main"}"#.to_vec()),
        (
            Forge::GitHub,
            br#"{"ref": 7, "repository": {"clone_url": "https://x/y.git"}}"#.to_vec(),
        ),
        (
            Forge::GitHub,
            br#"{"ref": "refs/heads/main", "repository": {"clone_url": 3}}"#.to_vec(),
        ),
        (
            Forge::GitHub,
            br#"{"ref": "refs/heads/main", "after": "not-a-sha", "repository": {"clone_url": "https://x/y.git"}}"#
                .to_vec(),
        ),
        (Forge::GitLab, br#"[]"#.to_vec()),
        (
            Forge::BitbucketCloud,
            br#"{"repository": {"links": {"html": {"href": "https://bitbucket.org/a/b"}}}}"#.to_vec(),
        ),
        (Forge::BitbucketServer, br#"{"repository": {}, "changes": []}"#.to_vec()),
        (Forge::Generic, br#"{"repoURL": "https://x/y.git"}"#.to_vec()),
        (
            Forge::Generic,
            br#"{"repoURL": "https://x/y.git", "ref": "main --upload-pack=evil"}"#.to_vec(),
        ),
        (Forge::Generic, b"".to_vec()),
    ] {
        let resp = send(
            &app,
            request("/api/webhook", &push_headers(forge, &body, SECRET), body.clone()),
        )
        .await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{forge} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(resp.json()["code"], 400);
    }
    assert!(backend.pushes().is_empty());
    assert!(backend.webhooks().iter().all(|(_, r)| r == "malformed"));

    // A signed delivery without the event header is malformed too.
    let body = github_push();
    let headers: Vec<_> = push_headers(Forge::GitHub, &body, SECRET)
        .into_iter()
        .filter(|(k, _)| *k != "x-github-event")
        .collect();
    let resp = send(&app, request("/api/webhook/github", &headers, body)).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ping_and_other_events_are_ignored() {
    let (backend, app) = signed();
    let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#.to_vec();
    let mac = hmac_sha256_hex(SECRET.as_bytes(), &body);
    let ping = vec![
        ("x-github-event", "ping".to_string()),
        ("x-hub-signature-256", format!("sha256={mac}")),
    ];
    let resp = send(&app, request("/api/webhook", &ping, body.clone())).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.json()["status"], "ignored");
    let issues = vec![
        ("x-github-event", "issues".to_string()),
        ("x-hub-signature-256", format!("sha256={mac}")),
    ];
    assert_eq!(
        send(&app, request("/api/webhook", &issues, body.clone())).await.status,
        StatusCode::OK
    );
    let bb_ping = vec![
        ("x-event-key", "diagnostics:ping".to_string()),
        ("x-hub-signature", format!("sha256={mac}")),
    ];
    assert_eq!(
        send(&app, request("/api/webhook", &bb_ping, body.clone())).await.json()["status"],
        "ignored"
    );
    let mr = vec![
        ("x-gitlab-event", "Merge Request Hook".to_string()),
        ("x-gitlab-token", SECRET.to_string()),
    ];
    assert_eq!(
        send(&app, request("/api/webhook", &mr, body.clone())).await.json()["status"],
        "ignored"
    );
    assert!(backend.pushes().is_empty());
    assert_eq!(backend.webhooks().len(), 4);
    assert!(backend.webhooks().iter().all(|(_, r)| r == "ignored"));

    // An unsigned ping is refused, not ignored: nothing answers 200 without the secret.
    let unsigned = vec![("x-github-event", "ping".to_string())];
    assert_eq!(
        send(&app, request("/api/webhook", &unsigned, body)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_sender_and_forge() {
    let (backend, app) = signed();
    let resp = send(&app, request("/api/webhook", &[], generic_push())).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    let resp = send(&app, request("/api/webhook/sourceforge", &[], generic_push())).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(
        backend.webhooks(),
        vec![
            ("unknown".into(), "malformed".into()),
            ("unknown".into(), "malformed".into())
        ]
    );
    // GET on the webhook endpoint.
    let resp = send(&app, Request::get("/api/webhook").body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.json()["code"], 405);
}

/// Property: random and mutated bodies with *valid* signatures never panic and always get 200
/// (accepted or ignored) or 400.
#[tokio::test]
async fn random_signed_bodies_never_panic() {
    let (backend, app) = signed();
    let mut rng = Rng::new(0x5eed_1234);
    let mut accepted = 0;
    for i in 0..600 {
        let forge = Forge::ALL[i % Forge::ALL.len()];
        let body = if rng.below(3) == 0 {
            rng.bytes(300)
        } else {
            rng.mutate(&sample(forge))
        };
        let resp = send(
            &app,
            request("/api/webhook", &push_headers(forge, &body, SECRET), body.clone()),
        )
        .await;
        assert!(
            resp.status == StatusCode::OK || resp.status == StatusCode::BAD_REQUEST,
            "{forge}: {} for {:?}",
            resp.status,
            String::from_utf8_lossy(&body)
        );
        let json = resp.json();
        if resp.status == StatusCode::OK {
            accepted += 1;
        } else {
            assert_eq!(json["code"], 400);
        }
    }
    assert_eq!(backend.webhooks().len(), 600);
    assert!(accepted > 0, "mutations should sometimes still be valid pushes");
    for event in backend.pushes() {
        assert!(event.git_ref.starts_with("refs/"));
        assert!(!event.repo_urls.is_empty());
    }
}

/// A real listener: a huge declared Content-Length is refused without the body being sent.
#[tokio::test]
async fn real_listener_refuses_large_declared_body_without_reading_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = Arc::new(FakeBackend::default());
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.webhook_secrets = WebhookSecrets::shared(SECRET);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(driftless_server::serve_on(listener, backend.clone(), config, async {
        let _ = rx.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/webhook/github HTTP/1.1\r\nhost: x\r\nx-github-event: push\r\ncontent-length: 104857600\r\n\r\n{\"ref\"",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert_eq!(backend.webhooks(), vec![("github".into(), "too_large".into())]);
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

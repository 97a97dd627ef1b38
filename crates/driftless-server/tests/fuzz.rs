//! Fuzz-style no-panic tests for every payload parser and for verification, over random bytes
//! and structure-aware mutations of real payload shapes.

mod common;

use axum::http::HeaderMap;
use common::*;
use driftless_server::webhook::{self, detect_forge, parse, verify};
use driftless_server::{Forge, Secret};

const ROUNDS: usize = 3000;

fn check(body: &[u8]) {
    for r in [
        webhook::parse_github(body),
        webhook::parse_gitea(body),
        webhook::parse_gitlab(body),
        webhook::parse_generic(body),
    ]
    .into_iter()
    .flatten()
    {
        assert!(r.git_ref.starts_with("refs/") && !r.repo_urls.is_empty());
    }
    for r in [
        webhook::parse_bitbucket_cloud(body),
        webhook::parse_bitbucket_server(body),
    ]
    .into_iter()
    .flatten()
    {
        assert!(r.len() <= webhook::MAX_CHANGES);
        assert!(
            r.iter()
                .all(|e| e.git_ref.starts_with("refs/") && !e.repo_urls.is_empty())
        );
    }
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let mut rng = Rng::new(42);
    for _ in 0..ROUNDS {
        check(&rng.bytes(512));
    }
}

#[test]
fn parsers_never_panic_on_mutated_payloads() {
    let samples = [
        github_push(),
        gitea_push(),
        gitlab_push(),
        bitbucket_cloud_push(),
        bitbucket_server_push(),
        generic_push(),
    ];
    let mut rng = Rng::new(7);
    for i in 0..ROUNDS {
        let mut body = samples[i % samples.len()].clone();
        for _ in 0..=rng.below(3) {
            body = rng.mutate(&body);
        }
        check(&body);
    }
}

#[test]
fn parsers_never_panic_on_hostile_shapes() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let many_changes = format!(
        "{{\"repository\":{{\"links\":{{\"clone\":[{{\"href\":\"https://h/r.git\"}}]}}}},\"changes\":[{}]}}",
        vec!["{\"ref\":{\"id\":\"refs/heads/a\"},\"toHash\":\"abcdef1\"}"; 5000].join(",")
    );
    for body in [
        deep.as_str(),
        deep_obj.as_str(),
        many_changes.as_str(),
        "\"\\ud800\"",
        "1e999999",
        "{\"ref\":\"refs/heads/\u{0}\",\"repository\":{\"clone_url\":\"x\"}}",
        "{\"push\":{\"changes\":[{\"new\":{\"type\":\"branch\",\"name\":\"\"}}]},\"repository\":{\"links\":{\"html\":{\"href\":\"https://\"}}}}",
        "{\"push\":{\"changes\":[{\"new\":{\"type\":\"branch\",\"name\":\"a\"}}]},\"repository\":{\"links\":{\"html\":{\"href\":\"https:///\"}}}}",
        "{\"repoURL\":\"x\",\"ref\":\"\u{e9}\u{e9}\",\"after\":\"\u{e9}\u{e9}\u{e9}\u{e9}\"}",
    ] {
        check(body.as_bytes());
    }
    let events = webhook::parse_bitbucket_server(many_changes.as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "identical changes collapse");
}

#[test]
fn detection_verification_and_dispatch_never_panic() {
    let mut rng = Rng::new(99);
    let names = [
        "x-github-event",
        "x-gitea-event",
        "x-forgejo-event",
        "x-gitlab-event",
        "x-gitlab-token",
        "x-event-key",
        "x-hook-uuid",
        "x-hub-signature",
        "x-hub-signature-256",
        "x-gitea-signature",
        "x-driftless-signature",
    ];
    let values: [&[u8]; 8] = [
        b"push",
        b"ping",
        b"Push Hook",
        b"repo:push",
        b"repo:refs_changed",
        b"sha256=",
        b"sha256=zz",
        b"\xff\xfe",
    ];
    let secret = Secret::new("s");
    for _ in 0..ROUNDS {
        let mut headers = HeaderMap::new();
        for _ in 0..rng.below(5) {
            let v = values[rng.below(values.len())];
            if let Ok(v) = axum::http::HeaderValue::from_bytes(v) {
                headers.insert(names[rng.below(names.len())], v);
            }
        }
        let body = rng.bytes(128);
        let _ = detect_forge(&headers);
        for forge in Forge::ALL {
            let _ = verify(forge, &headers, &body, &secret);
            let _ = parse(forge, &headers, &body);
        }
    }
}

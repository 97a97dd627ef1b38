//! Shared test helpers: a fake backend that records calls, sample payloads, a tiny PRNG.
#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use driftless_server::{AppSummary, Backend, BackendError, PushEvent, SyncRequest};
use serde_json::json;
use tower::ServiceExt;

/// Detail of the internal error the fake backend returns for app "boom".
pub const INTERNAL_DETAIL: &str = "open /var/lib/driftless/state.db: password=hunter2";

#[derive(Default)]
pub struct FakeBackend {
    pub calls: Mutex<Vec<String>>,
    pub pushes: Mutex<Vec<PushEvent>>,
    pub syncs: Mutex<Vec<SyncRequest>>,
    pub webhooks: Mutex<Vec<(String, String)>>,
    pub is_ready: AtomicBool,
}

impl FakeBackend {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    pub fn pushes(&self) -> Vec<PushEvent> {
        self.pushes.lock().unwrap().clone()
    }
    pub fn webhooks(&self) -> Vec<(String, String)> {
        self.webhooks.lock().unwrap().clone()
    }
    pub fn set_ready(&self, r: bool) {
        self.is_ready.store(r, Ordering::SeqCst);
    }
    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }
    fn lookup(&self, name: &str) -> Result<(), BackendError> {
        match name {
            "guestbook" => Ok(()),
            "boom" => Err(BackendError::Internal(INTERNAL_DETAIL.into())),
            "busy" => Err(BackendError::Conflict("a sync of busy is already running".into())),
            _ => Err(BackendError::NotFound(format!("application {name} not found"))),
        }
    }
}

impl Backend for FakeBackend {
    async fn apps(&self) -> Vec<AppSummary> {
        self.call("apps".into());
        vec![AppSummary {
            name: "guestbook".into(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            revision: "abc123".into(),
            message: String::new(),
            automated: true,
            last_sync: None,
            held_back: None,
            violations: Vec::new(),
        }]
    }
    async fn app(&self, name: &str) -> Result<serde_json::Value, BackendError> {
        self.call(format!("app {name}"));
        self.lookup(name)?;
        Ok(json!({"name": name, "objects": []}))
    }
    async fn diff(&self, name: &str) -> Result<serde_json::Value, BackendError> {
        self.call(format!("diff {name}"));
        self.lookup(name)?;
        Ok(json!({"changes": []}))
    }
    async fn refresh(&self, name: &str) -> Result<(), BackendError> {
        self.call(format!("refresh {name}"));
        self.lookup(name)
    }
    async fn sync(&self, name: &str, req: SyncRequest) -> Result<serde_json::Value, BackendError> {
        self.call(format!("sync {name}"));
        self.lookup(name)?;
        self.syncs.lock().unwrap().push(req);
        Ok(json!({"phase": "Succeeded"}))
    }
    async fn history(&self, name: &str, limit: usize) -> Result<serde_json::Value, BackendError> {
        self.call(format!("history {name} {limit}"));
        self.lookup(name)?;
        Ok(json!([]))
    }
    async fn rollback(&self, name: &str, id: i64) -> Result<serde_json::Value, BackendError> {
        self.call(format!("rollback {name} {id}"));
        self.lookup(name)?;
        Ok(json!({"rolledBackTo": id}))
    }
    async fn push(&self, event: PushEvent) -> Vec<String> {
        self.call("push".into());
        self.pushes.lock().unwrap().push(event);
        vec!["guestbook".into()]
    }
    fn ready(&self) -> bool {
        self.is_ready.load(Ordering::SeqCst)
    }
    fn metrics_text(&self) -> String {
        "# TYPE driftless_up gauge\ndriftless_up 1\n".into()
    }
    fn record_webhook(&self, forge: &str, result: &str) {
        self.webhooks.lock().unwrap().push((forge.into(), result.into()));
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    Resp { status, headers, body }
}

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// A mutation of `base`: byte flips, truncation, insertion of JSON punctuation.
    pub fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        match self.below(4) {
            0 => v.truncate(self.below(v.len() + 1)),
            1 => {
                for _ in 0..=self.below(8) {
                    if !v.is_empty() {
                        let i = self.below(v.len());
                        v[i] = self.next() as u8;
                    }
                }
            }
            2 => {
                const PIECES: [&[u8]; 10] = [
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b"null",
                    b"1e999",
                    b"\"",
                    b",",
                    b"\\u0000",
                    b"[[[[[[[[[[",
                ];
                for _ in 0..=self.below(4) {
                    let i = self.below(v.len() + 1);
                    let p = PIECES[self.below(PIECES.len())];
                    v.splice(i..i, p.iter().copied());
                }
            }
            _ => {
                // Replace a string value's content with a random type.
                const VALUES: [&[u8]; 6] = [b"null", b"42", b"[]", b"{}", b"true", b"\"\""];
                if let Some(start) = v.iter().position(|&b| b == b':') {
                    let skip = self.below(v.len() - start);
                    if let Some(off) = v[start + skip..].iter().position(|&b| b == b':') {
                        let at = start + skip + off + 1;
                        let end = v[at..]
                            .iter()
                            .position(|&b| b == b',' || b == b'}')
                            .map_or(v.len(), |e| at + e);
                        let val = VALUES[self.below(VALUES.len())];
                        v.splice(at..end, val.iter().copied());
                    }
                }
            }
        }
        v
    }
}

pub const SHA: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

pub fn github_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": SHA,
        "created": false, "deleted": false, "forced": false,
        "repository": {
            "id": 186853002, "name": "Hello-World", "full_name": "Codertocat/Hello-World",
            "html_url": "https://github.com/Codertocat/Hello-World",
            "url": "https://github.com/Codertocat/Hello-World",
            "git_url": "git://github.com/Codertocat/Hello-World.git",
            "ssh_url": "git@github.com:Codertocat/Hello-World.git",
            "clone_url": "https://github.com/Codertocat/Hello-World.git",
            "svn_url": "https://github.com/Codertocat/Hello-World",
            "owner": {"login": "Codertocat"}
        },
        "pusher": {"name": "Codertocat"},
        "commits": [{"id": SHA, "message": "Update README.md"}],
        "head_commit": {"id": SHA}
    }))
    .unwrap()
}

pub fn gitea_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/develop",
        "before": "28e1879d029cb852e4844d9c718537df08844e03",
        "after": "bffeb74224043ba2feb48d137756c8a9331c449a",
        "compare_url": "http://localhost:3000/gitea/webhooks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a",
        "commits": [{"id": "bffeb74224043ba2feb48d137756c8a9331c449a", "message": "Webhooks Yay!"}],
        "repository": {
            "id": 140, "name": "webhooks", "full_name": "gitea/webhooks",
            "html_url": "http://localhost:3000/gitea/webhooks",
            "ssh_url": "ssh://gitea@localhost:2222/gitea/webhooks.git",
            "clone_url": "http://localhost:3000/gitea/webhooks.git",
            "default_branch": "master"
        },
        "pusher": {"login": "gitea"}
    }))
    .unwrap()
}

pub fn gitlab_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object_kind": "push", "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": "refs/heads/master",
        "ref_protected": true,
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "project_id": 15,
        "project": {
            "id": 15, "name": "Diaspora",
            "web_url": "http://example.com/mike/diaspora",
            "git_ssh_url": "git@example.com:mike/diaspora.git",
            "git_http_url": "http://example.com/mike/diaspora.git",
            "namespace": "Mike", "path_with_namespace": "mike/diaspora",
            "default_branch": "master",
            "homepage": "http://example.com/mike/diaspora",
            "url": "git@example.com:mike/diaspora.git",
            "ssh_url": "git@example.com:mike/diaspora.git",
            "http_url": "http://example.com/mike/diaspora.git"
        },
        "repository": {
            "name": "Diaspora", "url": "git@example.com:mike/diaspora.git",
            "homepage": "http://example.com/mike/diaspora",
            "git_http_url": "http://example.com/mike/diaspora.git",
            "git_ssh_url": "git@example.com:mike/diaspora.git"
        },
        "commits": [], "total_commits_count": 4
    }))
    .unwrap()
}

pub fn bitbucket_cloud_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "actor": {"display_name": "Alice"},
        "repository": {
            "type": "repository", "full_name": "team/deploy", "name": "deploy",
            "links": {
                "self": {"href": "https://api.bitbucket.org/2.0/repositories/team/deploy"},
                "html": {"href": "https://bitbucket.org/team/deploy"},
                "avatar": {"href": "https://bytebucket.org/ravatar/x"}
            },
            "uuid": "{3f1e0c1e-0000-0000-0000-000000000000}"
        },
        "push": {"changes": [{
            "new": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": SHA}},
            "old": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}},
            "created": false, "forced": false, "closed": false, "truncated": false,
            "commits": []
        }, {
            "new": null,
            "old": {"type": "tag", "name": "v0.1.0", "target": {"hash": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}},
            "created": false, "closed": true
        }]}
    }))
    .unwrap()
}

pub fn bitbucket_server_push() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "eventKey": "repo:refs_changed",
        "date": "2017-09-19T09:45:32+1000",
        "actor": {"name": "admin", "id": 1},
        "repository": {
            "slug": "repository", "id": 84, "name": "repository", "scmId": "git",
            "project": {"key": "PROJ", "id": 84, "name": "project"},
            "links": {
                "clone": [
                    {"href": "ssh://git@bitbucket.example.com:7999/proj/repository.git", "name": "ssh"},
                    {"href": "https://bitbucket.example.com/scm/proj/repository.git", "name": "http"}
                ],
                "self": [{"href": "https://bitbucket.example.com/projects/PROJ/repos/repository/browse"}]
            }
        },
        "changes": [{
            "ref": {"id": "refs/heads/master", "displayId": "master", "type": "BRANCH"},
            "refId": "refs/heads/master",
            "fromHash": "ecddabb624f6f5ba43816f5926e580a5f680a932",
            "toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
            "type": "UPDATE"
        }]
    }))
    .unwrap()
}

pub fn generic_push() -> Vec<u8> {
    serde_json::to_vec(
        &json!({"repoURL": "https://git.example.com/org/deploy.git", "ref": "refs/heads/main", "after": SHA}),
    )
    .unwrap()
}

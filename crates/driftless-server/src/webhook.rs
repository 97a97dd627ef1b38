//! Forge webhooks: detection, signature verification and push payload parsing.
//!
//! Everything here is a pure function over headers and bytes, so it can be tested (and fuzzed)
//! without HTTP. The HTTP handler applies them in this order, which is the security design:
//!
//! 1. **Size first.** A `Content-Length` above the limit is refused with 413 without reading
//!    the body; otherwise the body is read through a length limit, so at most the limit (plus
//!    one frame) is ever buffered (CVE-2024-40634).
//! 2. **Authenticity next, on the raw bytes.** A forge without a configured secret is refused
//!    (never accept unsigned deliveries); a missing signature or token is 401
//!    `unauthenticated`, a wrong one 401 `bad_signature`. HMACs are verified with
//!    [`hmac::Mac::verify_slice`] and GitLab tokens with [`crate::config::ct_eq_digest`], both
//!    constant-time. Nothing is parsed before this succeeds, so an attacker cannot reach the
//!    JSON parser, and even `ping` is only answered 200 once signed.
//! 3. **Event type, then payload.** Non-push events are acknowledged as ignored. Push payloads
//!    are parsed into a `serde_json::Value` (bounded recursion depth, so no stack overflow) and
//!    navigated with total accessors: a wrong type is a 400, never a panic (CVE-2025-59538).
//!    Refs, commits and URLs are checked for sane length and characters before they reach the
//!    backend, because the daemon may pass them to git.
//!
//! | forge | event header | push events | signature |
//! |---|---|---|---|
//! | GitHub | `X-GitHub-Event` | `push` (`ping` ignored) | `X-Hub-Signature-256: sha256=HEX` |
//! | GitLab | `X-Gitlab-Event` | `Push Hook`, `Tag Push Hook` | `X-Gitlab-Token: SECRET` |
//! | Gitea/Forgejo | `X-Gitea-Event`/`X-Forgejo-Event`/`X-Gogs-Event` | `push` | `X-Gitea-Signature`/`X-Forgejo-Signature: HEX` (also `X-Hub-Signature-256`) |
//! | Bitbucket Cloud | `X-Event-Key` | `repo:push` | `X-Hub-Signature: sha256=HEX` |
//! | Bitbucket Server | `X-Event-Key` | `repo:refs_changed` (`diagnostics:ping` ignored) | `X-Hub-Signature: sha256=HEX` |
//! | generic | — | every delivery | `X-Driftless-Signature: sha256=HEX` |
//!
//! Gitea also sends `X-GitHub-Event`, so Gitea/Forgejo headers are checked before GitHub's
//! when detecting the forge. Bitbucket pushes may carry several ref changes; each becomes one
//! [`PushEvent`] (at most [`MAX_CHANGES`]). Deleted refs are delivered with `after: None`.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::config::{Secret, ct_eq_digest};
use crate::{Forge, PushEvent};

/// At most this many ref changes of one delivery are turned into events.
pub const MAX_CHANGES: usize = 100;
/// Longest accepted ref name.
pub const MAX_REF_LEN: usize = 1024;
/// Longest accepted repository URL.
pub const MAX_URL_LEN: usize = 2048;

/// Why a delivery was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No signature or token header.
    #[error("missing webhook signature")]
    Missing,
    /// A signature or token that does not match (or is not well-formed).
    #[error("invalid webhook signature")]
    Bad,
}

/// Why a verified delivery could not be understood. Messages name fields, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("payload is not valid JSON (line {line}, column {column})")]
    InvalidJson {
        /// Line of the syntax error.
        line: usize,
        /// Column of the syntax error.
        column: usize,
    },
    /// A required field is absent or has the wrong type.
    #[error("payload is missing {0}")]
    MissingField(&'static str),
    /// A field has an unacceptable value.
    #[error("payload has an invalid {0}")]
    InvalidField(&'static str),
    /// The forge's event header is absent.
    #[error("missing {0} header")]
    MissingEventHeader(&'static str),
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// One or more pushes to refresh.
    Push(Vec<PushEvent>),
    /// An event driftless does not act on (ping, issues, ...); the reason is a fixed string.
    Ignored(&'static str),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    // A header that is not visible ASCII is treated as present but unusable (empty string),
    // so it fails verification instead of counting as missing.
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// Detects the forge from request headers; `None` when no known header is present.
pub fn detect_forge(headers: &HeaderMap) -> Option<Forge> {
    if headers.contains_key("x-gitea-event")
        || headers.contains_key("x-forgejo-event")
        || headers.contains_key("x-gogs-event")
    {
        return Some(Forge::Gitea);
    }
    if headers.contains_key("x-github-event") {
        return Some(Forge::GitHub);
    }
    if headers.contains_key("x-gitlab-event") || headers.contains_key("x-gitlab-token") {
        return Some(Forge::GitLab);
    }
    if let Some(key) = header(headers, "x-event-key") {
        return Some(match key {
            "repo:refs_changed" | "diagnostics:ping" | "pr:opened" | "pr:merged" => Forge::BitbucketServer,
            "repo:push" => Forge::BitbucketCloud,
            // Bitbucket Cloud sends X-Hook-UUID; Server does not.
            _ if headers.contains_key("x-hook-uuid") => Forge::BitbucketCloud,
            _ => Forge::BitbucketServer,
        });
    }
    if headers.contains_key("x-driftless-signature") {
        return Some(Forge::Generic);
    }
    None
}

/// HMAC-SHA256 of `body` under `secret`, lower-case hex.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an impossible value.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Verifies a hex HMAC-SHA256 `signature` of `body` under `secret` in constant time.
/// Surrounding whitespace is ignored; any malformed hex is a mismatch.
pub fn verify_hmac_sha256(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(expected) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Verifies a `sha256=HEX` signature header value (the prefix is required).
fn verify_prefixed(secret: &[u8], body: &[u8], value: &str) -> Result<(), VerifyError> {
    match value.trim().strip_prefix("sha256=") {
        Some(hex) if verify_hmac_sha256(secret, body, hex) => Ok(()),
        _ => Err(VerifyError::Bad),
    }
}

/// Verifies a delivery's signature (or GitLab token) on the raw body.
pub fn verify(forge: Forge, headers: &HeaderMap, body: &[u8], secret: &Secret) -> Result<(), VerifyError> {
    let key = secret.expose();
    match forge {
        Forge::GitHub => verify_prefixed(
            key,
            body,
            header(headers, "x-hub-signature-256").ok_or(VerifyError::Missing)?,
        ),
        Forge::Gitea => {
            if let Some(v) = header(headers, "x-gitea-signature").or_else(|| header(headers, "x-forgejo-signature")) {
                let v = v.trim();
                let hex = v.strip_prefix("sha256=").unwrap_or(v);
                return if verify_hmac_sha256(key, body, hex) {
                    Ok(())
                } else {
                    Err(VerifyError::Bad)
                };
            }
            verify_prefixed(
                key,
                body,
                header(headers, "x-hub-signature-256").ok_or(VerifyError::Missing)?,
            )
        }
        Forge::GitLab => {
            let token = header(headers, "x-gitlab-token").ok_or(VerifyError::Missing)?;
            if ct_eq_digest(key, token.as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::Bad)
            }
        }
        Forge::BitbucketCloud | Forge::BitbucketServer => verify_prefixed(
            key,
            body,
            header(headers, "x-hub-signature").ok_or(VerifyError::Missing)?,
        ),
        Forge::Generic => verify_prefixed(
            key,
            body,
            header(headers, "x-driftless-signature").ok_or(VerifyError::Missing)?,
        ),
    }
}

/// Classifies a **verified** delivery by its event header and parses push payloads.
pub fn parse(forge: Forge, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
    match forge {
        Forge::GitHub => match header(headers, "x-github-event") {
            None => Err(ParseError::MissingEventHeader("X-GitHub-Event")),
            Some("push") => parse_github(body).map(|e| Delivery::Push(vec![e])),
            Some("ping") => Ok(Delivery::Ignored("ping")),
            Some(_) => Ok(Delivery::Ignored("not a push event")),
        },
        Forge::Gitea => match header(headers, "x-gitea-event")
            .or_else(|| header(headers, "x-forgejo-event"))
            .or_else(|| header(headers, "x-gogs-event"))
        {
            None => Err(ParseError::MissingEventHeader("X-Gitea-Event")),
            Some("push") => parse_gitea(body).map(|e| Delivery::Push(vec![e])),
            Some(_) => Ok(Delivery::Ignored("not a push event")),
        },
        Forge::GitLab => match header(headers, "x-gitlab-event") {
            None => Err(ParseError::MissingEventHeader("X-Gitlab-Event")),
            Some("Push Hook" | "Tag Push Hook") => parse_gitlab(body).map(|e| Delivery::Push(vec![e])),
            Some(_) => Ok(Delivery::Ignored("not a push event")),
        },
        Forge::BitbucketCloud => match header(headers, "x-event-key") {
            None => Err(ParseError::MissingEventHeader("X-Event-Key")),
            Some("repo:push") => parse_bitbucket_cloud(body).map(push_or_ignored),
            Some(_) => Ok(Delivery::Ignored("not a push event")),
        },
        Forge::BitbucketServer => match header(headers, "x-event-key") {
            None => Err(ParseError::MissingEventHeader("X-Event-Key")),
            Some("repo:refs_changed") => parse_bitbucket_server(body).map(push_or_ignored),
            Some("diagnostics:ping") => Ok(Delivery::Ignored("ping")),
            Some(_) => Ok(Delivery::Ignored("not a push event")),
        },
        Forge::Generic => parse_generic(body).map(|e| Delivery::Push(vec![e])),
    }
}

fn push_or_ignored(events: Vec<PushEvent>) -> Delivery {
    if events.is_empty() {
        Delivery::Ignored("no ref changes")
    } else {
        Delivery::Push(events)
    }
}

fn json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::InvalidJson {
        line: e.line(),
        column: e.column(),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str()
}

/// Collects valid URLs in order, without duplicates.
struct Urls(Vec<String>);

impl Urls {
    fn new() -> Self {
        Urls(Vec::new())
    }
    fn add(&mut self, url: Option<&str>) {
        if let Some(url) = url
            && valid_url(url)
            && !self.0.iter().any(|u| u == url)
        {
            self.0.push(url.to_string());
        }
    }
    fn finish(self) -> Result<Vec<String>, ParseError> {
        if self.0.is_empty() {
            Err(ParseError::MissingField("repository URL"))
        } else {
            Ok(self.0)
        }
    }
}

fn valid_url(url: &str) -> bool {
    !url.is_empty() && url.len() <= MAX_URL_LEN && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn valid_ref(r: &str) -> bool {
    r.starts_with("refs/")
        && r.len() > "refs/".len()
        && r.len() <= MAX_REF_LEN
        && !r.contains("..")
        && !r
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
}

fn git_ref(r: Option<&str>) -> Result<String, ParseError> {
    let r = r.ok_or(ParseError::MissingField("ref"))?;
    if valid_ref(r) {
        Ok(r.to_string())
    } else {
        Err(ParseError::InvalidField("ref"))
    }
}

/// A commit hash: `None` when absent, empty or all zeros (a deleted ref); otherwise 7–64 hex
/// digits.
fn commit(c: Option<&str>) -> Result<Option<String>, ParseError> {
    match c {
        None | Some("") => Ok(None),
        Some(c) if c.bytes().all(|b| b == b'0') => Ok(None),
        Some(c) if (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(c.to_ascii_lowercase()))
        }
        Some(_) => Err(ParseError::InvalidField("commit")),
    }
}

/// GitHub `push`: `repository.{clone_url,ssh_url,git_url,html_url,url}`, `ref`, `after`.
pub fn parse_github(body: &[u8]) -> Result<PushEvent, ParseError> {
    parse_github_like(Forge::GitHub, body)
}

/// Gitea/Forgejo `push`: GitHub-shaped.
pub fn parse_gitea(body: &[u8]) -> Result<PushEvent, ParseError> {
    parse_github_like(Forge::Gitea, body)
}

fn parse_github_like(forge: Forge, body: &[u8]) -> Result<PushEvent, ParseError> {
    let v = json(body)?;
    let repo = v
        .get("repository")
        .filter(|r| r.is_object())
        .ok_or(ParseError::MissingField("repository"))?;
    let mut urls = Urls::new();
    for key in ["clone_url", "ssh_url", "git_url", "html_url", "url"] {
        urls.add(repo.get(key).and_then(Value::as_str));
    }
    Ok(PushEvent {
        forge,
        repo_urls: urls.finish()?,
        git_ref: git_ref(str_at(&v, &["ref"]))?,
        after: commit(str_at(&v, &["after"]))?,
    })
}

/// GitLab `Push Hook`/`Tag Push Hook`: `project.{git_http_url,git_ssh_url,web_url,...}`,
/// `repository.*` as a fallback, `ref`, `checkout_sha` (else `after`).
pub fn parse_gitlab(body: &[u8]) -> Result<PushEvent, ParseError> {
    let v = json(body)?;
    let mut urls = Urls::new();
    for key in ["git_http_url", "git_ssh_url", "http_url", "ssh_url", "web_url"] {
        urls.add(str_at(&v, &["project", key]));
    }
    for key in ["git_http_url", "git_ssh_url", "url", "homepage"] {
        urls.add(str_at(&v, &["repository", key]));
    }
    let after = match str_at(&v, &["checkout_sha"]) {
        Some(sha) => commit(Some(sha))?,
        None => commit(str_at(&v, &["after"]))?,
    };
    Ok(PushEvent {
        forge: Forge::GitLab,
        repo_urls: urls.finish()?,
        git_ref: git_ref(str_at(&v, &["ref"]))?,
        after,
    })
}

/// Adds `.git` https and SSH forms derived from a Bitbucket Cloud web URL
/// (`https://bitbucket.org/OWNER/REPO`).
fn bitbucket_cloud_forms(urls: &mut Urls, html: &str) {
    let html = html.trim_end_matches('/');
    let Some(rest) = html.strip_prefix("https://").or_else(|| html.strip_prefix("http://")) else {
        return;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return;
    };
    if host.is_empty() || path.is_empty() || host.contains('@') {
        return;
    }
    urls.add(Some(&format!("{html}.git")));
    urls.add(Some(&format!("git@{host}:{path}.git")));
    urls.add(Some(&format!("ssh://git@{host}/{path}.git")));
}

/// Bitbucket Cloud `repo:push`: `repository.links.html.href`, one event per
/// `push.changes[]` with `new.{type,name,target.hash}` (`old` for a deleted ref).
pub fn parse_bitbucket_cloud(body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let v = json(body)?;
    let mut urls = Urls::new();
    let html = str_at(&v, &["repository", "links", "html", "href"]);
    urls.add(html);
    if let Some(html) = html {
        bitbucket_cloud_forms(&mut urls, html);
    }
    let repo_urls = urls.finish()?;
    let changes = v
        .get("push")
        .and_then(|p| p.get("changes"))
        .and_then(Value::as_array)
        .ok_or(ParseError::MissingField("push.changes"))?;
    let mut events: Vec<PushEvent> = Vec::new();
    for change in changes.iter().take(MAX_CHANGES) {
        let (side, deleted) = match change.get("new") {
            Some(new) if new.is_object() => (new, false),
            _ => match change.get("old") {
                Some(old) if old.is_object() => (old, true),
                _ => return Err(ParseError::MissingField("push.changes[].new")),
            },
        };
        let name = side
            .get("name")
            .and_then(Value::as_str)
            .ok_or(ParseError::MissingField("push.changes[].new.name"))?;
        let prefix = match side.get("type").and_then(Value::as_str) {
            Some("branch" | "named_branch") => "refs/heads/",
            Some("tag" | "annotated_tag") => "refs/tags/",
            Some(_) => return Err(ParseError::InvalidField("push.changes[].new.type")),
            None => return Err(ParseError::MissingField("push.changes[].new.type")),
        };
        let git_ref = git_ref(Some(&format!("{prefix}{name}")))?;
        let after = if deleted {
            None
        } else {
            commit(str_at(side, &["target", "hash"]))?
        };
        push_unique(
            &mut events,
            PushEvent {
                forge: Forge::BitbucketCloud,
                repo_urls: repo_urls.clone(),
                git_ref,
                after,
            },
        );
    }
    Ok(events)
}

/// Bitbucket Server/Data Center `repo:refs_changed`: `repository.links.clone[].href` (and
/// `links.self[].href`), one event per `changes[]` with `ref.id` (or `refId`) and `toHash`.
pub fn parse_bitbucket_server(body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let v = json(body)?;
    let mut urls = Urls::new();
    let links = v.get("repository").and_then(|r| r.get("links"));
    for kind in ["clone", "self"] {
        if let Some(list) = links.and_then(|l| l.get(kind)).and_then(Value::as_array) {
            for link in list.iter().take(16) {
                urls.add(link.get("href").and_then(Value::as_str));
            }
        }
    }
    let repo_urls = urls.finish()?;
    let changes = v
        .get("changes")
        .and_then(Value::as_array)
        .ok_or(ParseError::MissingField("changes"))?;
    let mut events: Vec<PushEvent> = Vec::new();
    for change in changes.iter().take(MAX_CHANGES) {
        let id = str_at(change, &["ref", "id"]).or_else(|| str_at(change, &["refId"]));
        let git_ref = git_ref(id)?;
        let after = commit(str_at(change, &["toHash"]))?;
        push_unique(
            &mut events,
            PushEvent {
                forge: Forge::BitbucketServer,
                repo_urls: repo_urls.clone(),
                git_ref,
                after,
            },
        );
    }
    Ok(events)
}

fn push_unique(events: &mut Vec<PushEvent>, event: PushEvent) {
    if !events.contains(&event) {
        events.push(event);
    }
}

/// driftless's generic payload: `{"repoURL": "...", "ref": "refs/heads/main", "after": "sha"}`.
/// `repoURLs` (an array) may be given instead of or besides `repoURL`; a `ref` without the
/// `refs/` prefix is taken as a branch name; `after` is optional.
pub fn parse_generic(body: &[u8]) -> Result<PushEvent, ParseError> {
    let v = json(body)?;
    let mut urls = Urls::new();
    match v.get("repoURL") {
        None => {}
        Some(Value::String(s)) if valid_url(s) => urls.add(Some(s)),
        Some(_) => return Err(ParseError::InvalidField("repoURL")),
    }
    if let Some(list) = v.get("repoURLs").and_then(Value::as_array) {
        for u in list.iter().take(16) {
            urls.add(u.as_str());
        }
    }
    let r = str_at(&v, &["ref"]).ok_or(ParseError::MissingField("ref"))?;
    let r = if r.starts_with("refs/") {
        r.to_string()
    } else {
        format!("refs/heads/{r}")
    };
    Ok(PushEvent {
        forge: Forge::Generic,
        repo_urls: urls.finish()?,
        git_ref: git_ref(Some(&r))?,
        after: commit(str_at(&v, &["after"]))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_known_vector() {
        let mac = hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(verify_hmac_sha256(b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac.to_uppercase()
        ));
        assert!(!verify_hmac_sha256(b"Jefe", b"what do ya want for nothing!", &mac));
        assert!(!verify_hmac_sha256(b"jefe", b"what do ya want for nothing?", &mac));
        assert!(!verify_hmac_sha256(
            b"Jefe",
            b"what do ya want for nothing?",
            &mac[..62]
        ));
        assert!(!verify_hmac_sha256(b"Jefe", b"what do ya want for nothing?", "zz"));
        assert!(!verify_hmac_sha256(b"Jefe", b"what do ya want for nothing?", ""));
    }

    /// GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    #[test]
    fn github_documented_vector() {
        assert_eq!(
            hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn commits_and_refs() {
        assert_eq!(commit(Some("0000000000000000000000000000000000000000")), Ok(None));
        assert_eq!(commit(Some("ABCDEF1")), Ok(Some("abcdef1".into())));
        assert!(commit(Some("abc")).is_err());
        assert!(commit(Some("xyz1234")).is_err());
        assert!(valid_ref("refs/heads/main"));
        assert!(!valid_ref("refs/"));
        assert!(!valid_ref("main"));
        assert!(!valid_ref("refs/heads/../x"));
        assert!(!valid_ref("refs/heads/a b"));
        assert!(!valid_ref("refs/heads/--upload-pack=x\n"));
    }

    #[test]
    fn detects_forges() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert_eq!(detect_forge(&h(&[("x-github-event", "push")])), Some(Forge::GitHub));
        assert_eq!(
            detect_forge(&h(&[("x-github-event", "push"), ("x-gitea-event", "push")])),
            Some(Forge::Gitea)
        );
        assert_eq!(detect_forge(&h(&[("x-forgejo-event", "push")])), Some(Forge::Gitea));
        assert_eq!(
            detect_forge(&h(&[("x-gitlab-event", "Push Hook")])),
            Some(Forge::GitLab)
        );
        assert_eq!(
            detect_forge(&h(&[("x-event-key", "repo:push")])),
            Some(Forge::BitbucketCloud)
        );
        assert_eq!(
            detect_forge(&h(&[("x-event-key", "repo:refs_changed")])),
            Some(Forge::BitbucketServer)
        );
        assert_eq!(
            detect_forge(&h(&[("x-driftless-signature", "sha256=00")])),
            Some(Forge::Generic)
        );
        assert_eq!(detect_forge(&h(&[("content-type", "application/json")])), None);
    }
}

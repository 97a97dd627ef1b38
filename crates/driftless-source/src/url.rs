//! Repository URLs: redaction for messages, normalisation for cache keys, and the form handed
//! to gix.
//!
//! Three spellings reach us: scheme URLs (`https://`, `http://`, `ssh://`, `git://`, `file://`),
//! scp-like `user@host:path`, and plain local paths. Secrets may hide in the userinfo of a scheme
//! URL (`https://user:token@host/...`, or a token as the user name), so every message built by
//! this crate uses [`redact_url`] and gix itself never sees a password in a URL.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::SourceError;

/// How a repository URL is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// `https://`
    Https,
    /// `http://` (credentials are never sent over it)
    Http,
    /// `ssh://` or scp-like `user@host:path`
    Ssh,
    /// `git://` (anonymous git daemon)
    Git,
    /// `file://` or a plain local path
    Local,
}

/// A repository URL split into what gix gets, what the cache is keyed by, and what messages show.
#[derive(Debug, Clone)]
pub(crate) struct RepoUrl {
    pub kind: UrlKind,
    /// URL handed to gix: no password, and for http(s) no userinfo at all.
    pub fetch_url: String,
    /// Normalised form hashed into the cache key.
    pub normalized: String,
    /// For messages: [`redact_url`] of the input.
    pub display: String,
    /// `user:password` found in an http(s) URL, used when no explicit credentials are given.
    pub embedded_basic: Option<(String, String)>,
}

/// Replace secrets in a repository URL so that it can appear in errors and logs.
///
/// - `http(s)://user:pass@host/x` and `https://token@host/x` become `https://***@host/x`: a
///   token is often passed as the user name, so the whole userinfo goes.
/// - Other schemes (`ssh://git:pw@host/x`) keep the user name, which people need to act on an
///   error, and lose the password: `ssh://git:***@host/x`.
/// - scp-like `git@host:org/repo.git` and local paths carry no secret and stay as they are.
///
/// Query strings and fragments of http(s) URLs are dropped too (some servers take tokens there).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut tail = &rest[authority_end..];
    let is_http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if is_http && let Some(q) = tail.find(['?', '#']) {
        tail = &tail[..q];
    }
    let Some(at) = authority.rfind('@') else {
        return format!("{scheme}://{authority}{tail}");
    };
    let userinfo = &authority[..at];
    let host = &authority[at + 1..];
    if is_http {
        return format!("{scheme}://***@{host}{tail}");
    }
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => format!("{scheme}://{userinfo}@{host}{tail}"),
    }
}

/// Is `s` scp-like (`[user@]host:path`), as git understands it? A colon before the first slash,
/// and no `://`.
fn is_scp_like(s: &str) -> bool {
    if s.contains("://") {
        return false;
    }
    match (s.find(':'), s.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && colon > 0,
        (Some(colon), None) => colon > 0,
        _ => false,
    }
}

impl RepoUrl {
    pub(crate) fn parse(url: &str) -> Result<RepoUrl, SourceError> {
        let display = redact_url(url);
        let invalid = |reason: &str| SourceError::InvalidUrl {
            url: display.clone(),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(invalid("the repository URL is empty"));
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(invalid("the repository URL contains control characters"));
        }
        // An option-looking URL could be taken as an option by ssh or git.
        if trimmed.starts_with('-') {
            return Err(invalid("a repository URL may not start with '-'"));
        }

        if let Some(scheme_end) = trimmed.find("://") {
            let scheme = trimmed[..scheme_end].to_ascii_lowercase();
            let rest = &trimmed[scheme_end + 3..];
            let kind = match scheme.as_str() {
                "https" => UrlKind::Https,
                "http" => UrlKind::Http,
                "ssh" | "git+ssh" | "ssh+git" => UrlKind::Ssh,
                "git" => UrlKind::Git,
                "file" => UrlKind::Local,
                _ => return Err(invalid(&format!("unsupported scheme '{scheme}'"))),
            };
            if kind == UrlKind::Local {
                let path = local_path(Path::new(rest));
                return Ok(local(path, display));
            }
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            let mut path = &rest[authority_end..];
            if let Some(q) = path.find(['?', '#']) {
                path = &path[..q];
            }
            let (userinfo, host) = match authority.rfind('@') {
                Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(invalid("the URL has no host"));
            }
            if host.starts_with('-') {
                return Err(invalid("a host name may not start with '-'"));
            }
            let host_lc = host.to_ascii_lowercase();
            let path_norm = path.trim_end_matches('/');
            let scheme_out = if kind == UrlKind::Ssh { "ssh" } else { scheme.as_str() };
            let (user, password) = match userinfo.map(|u| u.split_once(':')) {
                Some(Some((u, p))) => (Some(u), Some(p)),
                Some(None) => (userinfo, None),
                None => (None, None),
            };
            let (fetch_url, normalized, embedded_basic) = match kind {
                UrlKind::Http | UrlKind::Https => {
                    let embedded = match (user, password) {
                        (Some(u), Some(p)) => Some((percent_decode(u), percent_decode(p))),
                        (Some(u), None) => Some((percent_decode(u), String::new())),
                        _ => None,
                    };
                    (
                        format!("{scheme_out}://{host}{path}"),
                        format!("{scheme_out}://{host_lc}{path_norm}"),
                        embedded,
                    )
                }
                _ => {
                    let user_part = user.map(|u| format!("{u}@")).unwrap_or_default();
                    (
                        format!("{scheme_out}://{user_part}{host}{path}"),
                        format!("{scheme_out}://{user_part}{host_lc}{path_norm}"),
                        None,
                    )
                }
            };
            return Ok(RepoUrl {
                kind,
                fetch_url,
                normalized,
                display,
                embedded_basic,
            });
        }

        if is_scp_like(trimmed) {
            let (authority, path) = trimmed.split_once(':').expect("checked by is_scp_like");
            let (user, host) = match authority.rfind('@') {
                Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
                None => (None, authority),
            };
            if host.is_empty() || host.starts_with('-') {
                return Err(invalid("invalid host in scp-like URL"));
            }
            let user_part = user.map(|u| format!("{u}@")).unwrap_or_default();
            let rel = path.trim_end_matches('/');
            return Ok(RepoUrl {
                kind: UrlKind::Ssh,
                fetch_url: trimmed.to_string(),
                normalized: format!(
                    "ssh://{user_part}{}/{}",
                    host.to_ascii_lowercase(),
                    rel.trim_start_matches('/')
                ),
                display,
                embedded_basic: None,
            });
        }

        Ok(local(local_path(Path::new(trimmed)), display))
    }

    /// The cache directory name for this URL: a hash, never a path component the user controls.
    pub(crate) fn cache_key(&self) -> String {
        let digest = Sha256::digest(self.normalized.as_bytes());
        hex::encode(&digest[..20])
    }
}

fn local(path: PathBuf, display: String) -> RepoUrl {
    let s = path.to_string_lossy().to_string();
    RepoUrl {
        kind: UrlKind::Local,
        fetch_url: s.clone(),
        normalized: format!("file://{s}"),
        display,
        embedded_basic: None,
    }
}

/// Absolute, canonical where the path exists, so `./repo`, `/abs/repo` and `file:///abs/repo`
/// share one cache entry.
fn local_path(p: &Path) -> PathBuf {
    let p = p.to_path_buf();
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    };
    std::fs::canonicalize(&abs).unwrap_or(abs)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_http_userinfo_entirely() {
        assert_eq!(
            redact_url("https://alice:s3cret@example.com/org/repo.git"),
            "https://***@example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://ghp_TOKEN123@github.com/org/repo"),
            "https://***@github.com/org/repo"
        );
        assert_eq!(
            redact_url("HTTP://u:p@h:8080/x?private_token=abc#frag"),
            "HTTP://***@h:8080/x"
        );
        // a password containing '@' must not leak its tail as a "host"
        let r = redact_url("https://u:p@ss@host/r");
        assert_eq!(r, "https://***@host/r");
        assert!(!r.contains("p@ss"));
    }

    #[test]
    fn keeps_ssh_user_but_not_password() {
        assert_eq!(redact_url("ssh://git@host:22/r.git"), "ssh://git@host:22/r.git");
        assert_eq!(redact_url("ssh://git:pw@host/r.git"), "ssh://git:***@host/r.git");
        assert_eq!(redact_url("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
        assert_eq!(redact_url("/srv/git/repo"), "/srv/git/repo");
        assert_eq!(redact_url("https://host/r"), "https://host/r");
    }

    #[test]
    fn http_fetch_url_has_no_userinfo_and_embedded_creds_are_kept_aside() {
        let u = RepoUrl::parse("https://bob:pa%40ss@Example.COM/r.git/").unwrap();
        assert_eq!(u.fetch_url, "https://Example.COM/r.git/");
        assert_eq!(u.normalized, "https://example.com/r.git");
        assert_eq!(u.embedded_basic, Some(("bob".to_string(), "pa@ss".to_string())));
        assert!(!u.display.contains("pa%40ss"));
    }

    #[test]
    fn cache_key_ignores_credentials_and_case_of_host() {
        let a = RepoUrl::parse("https://u:p@Host/r.git").unwrap();
        let b = RepoUrl::parse("https://host/r.git/").unwrap();
        assert_eq!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key().len(), 40);
        assert!(a.cache_key().chars().all(|c| c.is_ascii_hexdigit()));
        let c = RepoUrl::parse("https://host/other.git").unwrap();
        assert_ne!(a.cache_key(), c.cache_key());
    }

    #[test]
    fn scp_like_and_local() {
        let s = RepoUrl::parse("git@host:org/r.git").unwrap();
        assert_eq!(s.kind, UrlKind::Ssh);
        assert_eq!(s.normalized, "ssh://git@host/org/r.git");
        let l = RepoUrl::parse("/tmp").unwrap();
        assert_eq!(l.kind, UrlKind::Local);
        let f = RepoUrl::parse("file:///tmp").unwrap();
        assert_eq!(l.cache_key(), f.cache_key());
    }

    #[test]
    fn rejects_option_like_and_unknown_schemes() {
        assert!(RepoUrl::parse("-oProxyCommand=x").is_err());
        assert!(RepoUrl::parse("ssh://-oProxyCommand=x/r").is_err());
        assert!(RepoUrl::parse("ftp://host/r").is_err());
        assert!(RepoUrl::parse("").is_err());
    }
}

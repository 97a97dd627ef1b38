//! Resolving what the user wrote (`main`, `v1.2.0`, `~1.2`, a SHA) to a commit.
//!
//! Order, first match wins:
//! 1. a full 40-hex commit id, which must exist in the mirror (a tag object id is peeled);
//! 2. a fully qualified `refs/heads/...` or `refs/tags/...` name;
//! 3. an exact **branch** name: a branch wins over a tag of the same name, as in Argo CD
//!    and Flux, because a branch is what people usually mean to follow; write `refs/tags/X`
//!    to get the tag;
//! 4. an exact tag name (annotated tags are peeled to their commit);
//! 5. a semver range over tags (`~1.2`, `^1`, `>=1.0.0 <2`, `1.x`, `1.2 || 2.x`). Tags may
//!    carry a leading `v`; tags that are not semver are ignored; the highest match wins;
//!    prereleases match only when the range names a prerelease of the same
//!    `major.minor.patch` (`>=1.3.0-rc.0`). A bare version (`1.2.0`) means exactly that version
//!    (Masterminds/Argo CD semantics), not Cargo's caret.

use gix::bstr::ByteSlice;

use crate::SourceError;
use crate::url::RepoUrl;

/// A ref target: the commit and the full ref it came through.
pub(crate) struct Resolved {
    pub commit: gix::ObjectId,
    pub resolved_ref: String,
}

pub(crate) fn resolve_in(repo: &gix::Repository, url: &RepoUrl, requested: &str) -> Result<Resolved, SourceError> {
    let git_err = |e: &dyn std::error::Error| SourceError::Git {
        url: url.display.clone(),
        message: crate::cache::error_chain(e, &[]),
    };
    let want = requested.trim();
    let branches = list_refs(repo, "refs/heads/").map_err(|e| git_err(&*e))?;
    let tags = list_refs(repo, "refs/tags/").map_err(|e| git_err(&*e))?;
    let not_found = |reason: Option<String>| SourceError::RefNotFound {
        requested: requested.to_string(),
        url: url.display.clone(),
        branches: nearest(want, branches.iter().map(|(n, _)| n.as_str())),
        tags: nearest(want, tags.iter().map(|(n, _)| n.as_str())),
        reason,
    };
    if want.is_empty() {
        return Err(not_found(Some("the ref is empty".into())));
    }

    if want.len() == 40 && want.chars().all(|c| c.is_ascii_hexdigit()) {
        let id = gix::ObjectId::from_hex(want.to_ascii_lowercase().as_bytes()).map_err(|e| git_err(&e))?;
        return match peel_to_commit(repo, id) {
            Some(commit) => Ok(Resolved {
                commit,
                resolved_ref: commit.to_string(),
            }),
            None => Err(not_found(Some(
                "no commit with this id was fetched (is it on a branch or tag of the repository?)".into(),
            ))),
        };
    }

    let find = |list: &[(String, gix::ObjectId)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let peel = |id: gix::ObjectId, full: String| -> Result<Resolved, SourceError> {
        peel_to_commit(repo, id)
            .map(|commit| Resolved {
                commit,
                resolved_ref: full.clone(),
            })
            .ok_or_else(|| not_found(Some(format!("{full} does not point to a commit"))))
    };
    if let Some(short) = want.strip_prefix("refs/heads/") {
        return match find(&branches, short) {
            Some(id) => peel(id, want.to_string()),
            None => Err(not_found(None)),
        };
    }
    if let Some(short) = want.strip_prefix("refs/tags/") {
        return match find(&tags, short) {
            Some(id) => peel(id, want.to_string()),
            None => Err(not_found(None)),
        };
    }
    if let Some(id) = find(&branches, want) {
        return peel(id, format!("refs/heads/{want}"));
    }
    if let Some(id) = find(&tags, want) {
        return peel(id, format!("refs/tags/{want}"));
    }

    let Some(range) = SemverRange::parse(want) else {
        return Err(not_found(None));
    };
    let best = tags
        .iter()
        .filter_map(|(name, id)| parse_tag_version(name).map(|v| (v, name, *id)))
        .filter(|(v, _, _)| range.matches(v))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    match best {
        Some((_, name, id)) => peel(id, format!("refs/tags/{name}")),
        None => Err(not_found(Some(format!("no tag matches the semver range '{want}'")))),
    }
}

/// Short names and ids of the refs under `prefix`, sorted by name.
pub(crate) fn list_refs(
    repo: &gix::Repository,
    prefix: &str,
) -> Result<Vec<(String, gix::ObjectId)>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    let platform = repo.references()?;
    for r in platform.prefixed(prefix)? {
        let mut r = r?;
        let full = r.name().as_bstr().to_str_lossy().into_owned();
        let short = full[prefix.len()..].to_string();
        let id = r.peel_to_id()?.detach();
        out.push((short, id));
    }
    out.sort();
    Ok(out)
}

fn peel_to_commit(repo: &gix::Repository, id: gix::ObjectId) -> Option<gix::ObjectId> {
    let obj = repo.find_object(id).ok()?;
    obj.peel_to_commit().ok().map(|c| c.id)
}

/// A version from a tag name, with an optional leading `v`.
pub fn parse_tag_version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    semver::Version::parse(t).ok()
}

/// A semver range as people write it in GitOps tools: comparators separated by spaces or commas,
/// alternatives by `||`, bare versions meaning exact (with `x`/`*` wildcards).
#[derive(Debug, Clone)]
pub struct SemverRange {
    alternatives: Vec<semver::VersionReq>,
}

impl SemverRange {
    /// Parse a range; `None` when `s` is not a range (e.g. a branch name like `main`).
    pub fn parse(s: &str) -> Option<SemverRange> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let mut alternatives = Vec::new();
        for alt in s.split("||") {
            alternatives.push(parse_conjunction(alt)?);
        }
        Some(SemverRange { alternatives })
    }

    /// Does `v` satisfy the range?
    pub fn matches(&self, v: &semver::Version) -> bool {
        self.alternatives.iter().any(|r| r.matches(v))
    }
}

fn parse_conjunction(s: &str) -> Option<semver::VersionReq> {
    // Tokenise: split on whitespace and commas, then glue a lone operator to the next token
    // (`>= 1.0` → `>=1.0`).
    let raw: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    if raw.is_empty() {
        return None;
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op: Option<&str> = None;
    for t in raw {
        if t.chars().all(|c| "<>=~^".contains(c)) {
            if pending_op.is_some() {
                return None;
            }
            pending_op = Some(t);
            continue;
        }
        let tok = match pending_op.take() {
            Some(op) => format!("{op}{t}"),
            None => t.to_string(),
        };
        tokens.push(tok);
    }
    if pending_op.is_some() {
        return None;
    }
    let mut comparators = Vec::new();
    for t in tokens {
        let (op, ver) = split_op(&t);
        let ver = ver.strip_prefix(['v', 'V']).unwrap_or(ver);
        // Every token must look like a version, so that names like `main` or `release-1`
        // are never mistaken for ranges.
        let first = ver.chars().next()?;
        if !(first.is_ascii_digit() || first == '*' || first == 'x' || first == 'X') {
            return None;
        }
        if ver.chars().any(|c| !(c.is_ascii_alphanumeric() || ".-+*".contains(c))) {
            return None;
        }
        let op = if op.is_empty() {
            if ver == "*" || ver == "x" || ver == "X" {
                ""
            } else {
                "="
            }
        } else {
            op
        };
        comparators.push(format!("{op}{ver}"));
    }
    semver::VersionReq::parse(&comparators.join(", ")).ok()
}

fn split_op(t: &str) -> (&str, &str) {
    let end = t
        .char_indices()
        .find(|(_, c)| !"<>=~^".contains(*c))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    (&t[..end], &t[end..])
}

/// Up to 5 names, closest to `want` first (edit distance, then name).
fn nearest<'a>(want: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = names.map(|n| (edit_distance(want, n), n)).collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.to_string()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(128).collect();
    let b: Vec<char> = b.chars().take(128).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    fn best<'a>(range: &str, tags: &[&'a str]) -> Option<&'a str> {
        let r = SemverRange::parse(range).unwrap();
        tags.iter()
            .filter_map(|t| parse_tag_version(t).map(|v| (v, *t)))
            .filter(|(v, _)| r.matches(v))
            .max()
            .map(|(_, t)| t)
    }

    const TAGS: &[&str] = &["v1.0.0", "v1.2.0", "1.2.5", "v1.3.0-rc.1", "v2.0.0", "junk"];

    #[test]
    fn ranges() {
        assert_eq!(best("~1.2", TAGS), Some("1.2.5"));
        assert_eq!(best(">=1.0.0 <2", TAGS), Some("1.2.5"));
        assert_eq!(best(">= 1.0.0, < 2", TAGS), Some("1.2.5"));
        assert_eq!(best("1.x", TAGS), Some("1.2.5"));
        assert_eq!(best("^1", TAGS), Some("1.2.5"));
        assert_eq!(best("*", TAGS), Some("v2.0.0"));
        assert_eq!(best("1.0.0", TAGS), Some("v1.0.0"));
        assert_eq!(best("v1.0.0", TAGS), Some("v1.0.0"));
        assert_eq!(best("~1.0 || ~1.2", TAGS), Some("1.2.5"));
        assert_eq!(best(">=3", TAGS), None);
    }

    #[test]
    fn prereleases_only_when_asked() {
        assert_eq!(best(">=1.3.0-rc.0 <2", TAGS), Some("v1.3.0-rc.1"));
        assert!(!SemverRange::parse("^1").unwrap().matches(&v("1.3.0-rc.1")));
    }

    #[test]
    fn names_are_not_ranges() {
        for n in ["main", "release-1", "feature/x", "v1-branch", "x86", ">=", "1.0 >="] {
            assert!(SemverRange::parse(n).is_none(), "{n}");
        }
    }

    #[test]
    fn nearest_names() {
        let names = ["main", "maint", "develop", "a", "b", "c", "d"];
        let n = nearest("mian", names.iter().copied());
        assert_eq!(n.len(), 5);
        assert_eq!(n[0], "main");
    }
}

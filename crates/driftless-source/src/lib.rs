//! driftless-source: Git access for the Source stage.
//!
//! [`GitCache`] keeps bare mirrors of remote repositories ([`GitCache::fetch`]), resolves what a
//! user wrote as a ref to a commit ([`GitCache::resolve`], returning a
//! [`driftless_core::revision::Revision`]), and reads a path of a commit's tree into a fresh
//! directory for the renderers ([`GitCache::materialize`]) without a checkout.
//!
//! Design decisions:
//! - **gix** does all Git work (no libgit2): https through reqwest + rustls(ring), ssh through
//!   the system `ssh` binary with a per-fetch `core.sshCommand`
//!   (`-i KEY -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
//!   always `BatchMode=yes`), `git://`, `file://` and local paths through `git-upload-pack`.
//! - Repositories are opened **isolated** from the operator's git configuration and the
//!   environment: no credential helpers, prompts or `insteadOf` rewrites.
//! - **Credentials never appear in errors or logs**: URLs go through [`redact_url`], gix never
//!   sees a password in a URL, and transport messages are scrubbed of the secrets in use.
//!   Credentials are never sent over plain `http://`.
//! - Hostile repositories: see [`tree`](crate::GitCache::materialize) for path, symlink and size
//!   rules, and [`cache`](crate::GitCache) for the cache layout (hashed names only).
//! - The symbolic `HEAD` is not resolved: name the branch.
//! - The mirror cache is shared by all callers of one URL (see [`GitCache`]): which application
//!   may use which URL is for the engine to enforce.
//! - Errors carry their [`ErrorClass`] so the engine knows whether to retry, wait for a fix of
//!   the credentials, or wait for a change in Git.

#![warn(missing_docs)]

mod cache;
mod credentials;
mod error;
mod refs;
mod tree;
mod url;

use std::path::Path;

use driftless_core::revision::Revision;
use gix::bstr::ByteSlice;

pub use cache::GitCache;
pub use credentials::{
    BasicAuth, Credentials, ENV_CA_FILE, ENV_KNOWN_HOSTS_FILE, ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_SSH_KEY_FILE,
    ENV_USERNAME, Secret, SshAuth,
};
pub use error::{ErrorClass, SourceError};
pub use refs::{SemverRange, parse_tag_version};
pub use url::{UrlKind, redact_url};

use url::RepoUrl;

/// Limits on what reading a tree may produce (hostile repositories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file, in bytes. Default 16 MiB.
    pub max_file_bytes: u64,
    /// Largest sum of file sizes under one path, in bytes. Default 256 MiB.
    pub max_total_bytes: u64,
    /// Most files and directories under one path. Default 100 000.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 16 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_files: 100_000,
        }
    }
}

impl GitCache {
    /// Resolve `reference` in the mirror of `url` (fetch it first) to a commit.
    ///
    /// Accepts a 40-hex commit id (which must exist), `refs/heads/X` / `refs/tags/X`, a branch
    /// name, a tag name (annotated tags peeled to the commit) or a semver range over tags
    /// (`~1.2`, `>=1.0.0 <2`, `1.x`; leading `v` allowed; highest match wins; prereleases only
    /// if the range names one). **A branch wins over a tag of the same name**; write
    /// `refs/tags/NAME` for the tag.
    pub fn resolve(&self, url: &str, reference: &str) -> Result<Revision, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let resolved = refs::resolve_in(&repo, &u, reference)?;
        let commit = repo.find_commit(resolved.commit).map_err(|e| git_err(&u, &e))?;
        let author = commit.author().map_err(|e| git_err(&u, &e))?;
        let time = author.time().map(|t| t.seconds).unwrap_or(0);
        let author_s = format!("{} <{}>", author.name.to_str_lossy(), author.email.to_str_lossy());
        let message = commit
            .message()
            .map(|m| m.summary().to_str_lossy().into_owned())
            .unwrap_or_default();
        Ok(Revision {
            commit: resolved.commit.to_string(),
            requested_ref: reference.to_string(),
            resolved_ref: resolved.resolved_ref,
            author: author_s,
            message,
            time,
        })
    }

    /// Branch names in the mirror of `url`, sorted.
    pub fn branches(&self, url: &str) -> Result<Vec<String>, SourceError> {
        self.ref_names(url, "refs/heads/")
    }

    /// Tag names in the mirror of `url`, sorted.
    pub fn tags(&self, url: &str) -> Result<Vec<String>, SourceError> {
        self.ref_names(url, "refs/tags/")
    }

    fn ref_names(&self, url: &str, prefix: &str) -> Result<Vec<String>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let list = refs::list_refs(&repo, prefix).map_err(|e| git_err(&u, &*e))?;
        Ok(list.into_iter().map(|(n, _)| n).collect())
    }

    /// Write the files under `path` at `commit` into `dest` (an existing, preferably empty and
    /// fresh, directory). `path` may name a directory (its content lands in `dest`) or a file
    /// (written as `dest/<file name>`); `""` or `"."` is the repository root.
    ///
    /// Refuses absolute paths and `..`; never writes a symlink: in-repository symlinks become
    /// copies of their targets, and symlinks that escape the repository fail with
    /// [`SourceError::SymlinkEscape`] naming the file. Enforces [`Limits`]. On error, `dest`
    /// may hold part of the files; discard it.
    pub fn materialize(&self, url: &str, commit: &str, path: &str, dest: &Path) -> Result<(), SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let reader = self.reader(&repo, &u, commit)?;
        let mut sink = tree::DirSink {
            dest: dest.to_path_buf(),
        };
        reader.walk(path, &mut sink)
    }

    /// Paths of the files [`GitCache::materialize`] would write for `path`, relative to it,
    /// in tree order. Applies the same safety rules and limits.
    pub fn list_files(&self, url: &str, commit: &str, path: &str) -> Result<Vec<String>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let reader = self.reader(&repo, &u, commit)?;
        let mut sink = tree::ListSink::default();
        reader.walk(path, &mut sink)?;
        Ok(sink.files)
    }

    /// A content id for `path` at `commit`: the git object id of that directory (or file).
    /// Two commits with the same id for an app's path hold the same files there, so a
    /// monorepo commit that touches other paths need not re-render this app. `None` when the
    /// subtree contains symlinks (whose targets may change elsewhere in the repository).
    pub fn content_id(&self, url: &str, commit: &str, path: &str) -> Result<Option<String>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        self.reader(&repo, &u, commit)?.content_id(path)
    }

    /// The content of one file at `commit` (in-repository symlinks followed, size limited).
    pub fn read_file(&self, url: &str, commit: &str, path: &str) -> Result<Vec<u8>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        self.reader(&repo, &u, commit)?.read(path)
    }

    /// The raw commit object bytes (headers and message, without the `commit <len>\0` prefix),
    /// e.g. to verify its `gpgsig` signature. `commit` must be a full 40-hex commit id that
    /// exists in the fetched mirror of `url`.
    pub fn raw_commit(&self, url: &str, commit: &str) -> Result<Vec<u8>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let id = commit_id(&u, commit)?;
        let obj = repo.find_object(id).map_err(|_| commit_not_found(&u, commit))?;
        if obj.kind != gix::object::Kind::Commit {
            return Err(commit_not_found(&u, commit));
        }
        Ok(obj.detach().data)
    }

    /// The raw annotated tag objects under `refs/tags/NAME` that point directly at `commit`, as
    /// `(NAME, raw tag object)` sorted by name (e.g. to verify their signatures). Lightweight
    /// tags and tags of tags are left out; no tag gives an empty list. `commit` must be a full
    /// 40-hex commit id that exists in the fetched mirror of `url`.
    pub fn raw_tags_for(&self, url: &str, commit: &str) -> Result<Vec<(String, Vec<u8>)>, SourceError> {
        let u = RepoUrl::parse(url)?;
        let repo = self.open(&u)?;
        let id = commit_id(&u, commit)?;
        match repo.find_object(id) {
            Ok(obj) if obj.kind == gix::object::Kind::Commit => {}
            _ => return Err(commit_not_found(&u, commit)),
        }
        tags_at(&repo, id, &u.display)
    }

    fn reader<'r>(
        &'r self,
        repo: &'r gix::Repository,
        u: &RepoUrl,
        commit: &str,
    ) -> Result<tree::TreeReader<'r>, SourceError> {
        let not_found = || SourceError::RefNotFound {
            requested: commit.to_string(),
            url: u.display.clone(),
            branches: Vec::new(),
            tags: Vec::new(),
            reason: Some("expected a full commit id that exists in the fetched repository".into()),
        };
        if commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let id = gix::ObjectId::from_hex(commit.to_ascii_lowercase().as_bytes()).map_err(|_| not_found())?;
        let obj = repo.find_object(id).map_err(|_| not_found())?;
        let commit_obj = obj.peel_to_commit().map_err(|_| not_found())?;
        let tree = commit_obj.tree_id().map_err(|e| git_err(u, &e))?.detach();
        Ok(tree::TreeReader {
            repo,
            trees: self.trees(),
            root: tree,
            limits: self.limits().clone(),
            url: u.display.clone(),
            commit: commit.to_string(),
        })
    }
}

/// The annotated tags under `refs/tags/` of `repo` whose tag object points directly at `id`,
/// as `(NAME, raw tag object)` sorted by name.
fn tags_at(repo: &gix::Repository, id: gix::ObjectId, display: &str) -> Result<Vec<(String, Vec<u8>)>, SourceError> {
    let err = |e: &dyn std::error::Error| SourceError::Git {
        url: display.to_owned(),
        message: cache::error_chain(e, &[]),
    };
    let platform = repo.references().map_err(|e| err(&e))?;
    let mut out = Vec::new();
    for r in platform.prefixed("refs/tags/").map_err(|e| err(&e))? {
        let r = r.map_err(|e| err(&e))?;
        let name = r.name().as_bstr().to_str_lossy();
        let name = name.strip_prefix("refs/tags/").unwrap_or(&name).to_string();
        let Some(target) = r.target().try_id().map(|t| t.to_owned()) else {
            continue; // symbolic ref
        };
        let Ok(obj) = repo.find_object(target) else {
            continue;
        };
        if obj.kind != gix::object::Kind::Tag {
            continue; // lightweight tag
        }
        let data = obj.detach().data;
        let points_here = gix::objs::TagRef::from_bytes(&data, repo.object_hash()).is_ok_and(|t| t.target() == id);
        if points_here {
            out.push((name, data));
        }
    }
    out.sort();
    Ok(out)
}

/// The HEAD commit of a local work tree, as [`local_head`] reads it.
#[derive(Debug, Clone)]
pub struct LocalHead {
    /// Full hex commit id.
    pub commit: String,
    /// The raw commit object.
    pub raw: Vec<u8>,
    /// Annotated tags pointing at it: `(NAME, raw tag object)`, sorted by name.
    pub tags: Vec<(String, Vec<u8>)>,
}

/// The HEAD commit of a local (working) repository containing `dir`: its id, its raw object
/// and the annotated tags pointing at it — what `driftless validate --verify-key` checks.
pub fn local_head(dir: &std::path::Path) -> Result<LocalHead, SourceError> {
    let display = dir.display().to_string();
    let err = |message: String| SourceError::Git {
        url: display.clone(),
        message,
    };
    let repo = gix::discover(dir).map_err(|e| err(format!("not in a git repository: {e}")))?;
    let commit = repo.head_commit().map_err(|e| err(format!("no HEAD commit: {e}")))?;
    let id = commit.id;
    let raw = commit.data.clone();
    let tags = tags_at(&repo, id, &display)?;
    Ok(LocalHead {
        commit: id.to_string(),
        raw,
        tags,
    })
}

fn commit_not_found(u: &RepoUrl, commit: &str) -> SourceError {
    SourceError::RefNotFound {
        requested: commit.to_string(),
        url: u.display.clone(),
        branches: Vec::new(),
        tags: Vec::new(),
        reason: Some("expected a full commit id that exists in the fetched repository".into()),
    }
}

fn commit_id(u: &RepoUrl, commit: &str) -> Result<gix::ObjectId, SourceError> {
    if commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(commit_not_found(u, commit));
    }
    gix::ObjectId::from_hex(commit.to_ascii_lowercase().as_bytes()).map_err(|_| commit_not_found(u, commit))
}

fn git_err(u: &RepoUrl, e: &dyn std::error::Error) -> SourceError {
    SourceError::Git {
        url: u.display.clone(),
        message: cache::error_chain(e, &[]),
    }
}
